import { useInput } from 'ink';
import { useCallback, useLayoutEffect, useReducer, useRef } from 'react';

type InputHandler = Parameters<typeof useInput>[0];

/**
 * useReducer whose newest state can be read at once. Keys can arrive faster than React re-renders (a
 * loaded machine, a fast typist), so a key handler must act on the state after the previous key, not on
 * the state its render saw.
 */
export function useCurrentReducer<S, A>(
  reducer: (state: S, action: A) => S,
  initial: S,
): [state: S, dispatch: (action: A) => void, current: () => S] {
  const [state, dispatch] = useReducer(reducer, initial);
  const latest = useRef(initial);
  const dispatchNow = useCallback(
    (action: A) => {
      latest.current = reducer(latest.current, action);
      dispatch(action);
    },
    [reducer],
  );
  const current = useCallback(() => latest.current, []);
  return [state, dispatchNow, current];
}

/**
 * useInput with the handler of the latest committed render. Ink re-attaches a changed handler in a passive
 * effect, after the frame is already on screen; a key typed in between reached the previous screen's handler
 * and was lost. Here the listener stays attached and the handler is swapped during the commit.
 */
export function useKeys(handler: InputHandler): void {
  const latest = useRef(handler);
  useLayoutEffect(() => {
    latest.current = handler;
  });
  useInput(useCallback<InputHandler>((input, key) => latest.current(input, key), []));
}
