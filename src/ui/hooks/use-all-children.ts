import { useCallback, useEffect, useRef, useState } from 'react';
import type { ListCategory, ListedChild } from '../../engine/list.ts';
import type { Sample } from '../../engine/scan.ts';
import type { ConsoleServices } from '../services.ts';
import { TABS } from '../state/reducer.ts';

/** Children fetched per step, and how close to the end of what is loaded the cursor may get first. */
const STEP = 500;
const READ_AHEAD = 100;

/** Every child of one category of one relation, loaded from the last complete scan as the operator pages. */
export interface AllChildren {
  relation: string;
  tab: number;
  rows: Sample[];
  done: boolean;
  loading: boolean;
  error?: string;
}

export function listableCategory(tab: number): ListCategory | undefined {
  const category = TABS[tab];
  return category === 'orphans' || category === 'parentInactive' ? category : undefined;
}

/**
 * The review's "all children" mode (`a`): instead of the scan's samples, the category's every child, read a
 * step at a time as the selection nears the end of what is loaded, so 10,000 or 10 million page alike.
 */
export function useAllChildren(
  services: ConsoleServices,
  view: { relation?: string; tab?: number; row?: number },
) {
  const [all, setAll] = useState<AllChildren>();
  const source = useRef<AsyncGenerator<ListedChild>>(undefined);

  const loadMore = useCallback(async (generator: AsyncGenerator<ListedChild>) => {
    setAll((prev) => (prev ? { ...prev, loading: true } : prev));
    const more: Sample[] = [];
    let done = false;
    let error: string | undefined;
    try {
      while (more.length < STEP) {
        const next = await generator.next();
        if (next.done) {
          done = true;
          break;
        }
        const child = next.value;
        more.push({ id: child.id, reference: child.reference, since: child.firstSeenAt });
      }
    } catch (caught) {
      error = (caught as Error).message;
      done = true;
    }
    // A later toggle replaced the source: these rows belong to a list no longer shown.
    if (source.current !== generator) return;
    setAll((prev) => (prev ? { ...prev, rows: [...prev.rows, ...more], done, loading: false, error } : prev));
  }, []);

  const toggle = useCallback(
    (relation: string, tab: number): boolean => {
      const category = listableCategory(tab);
      if (!category) return false;
      void source.current?.return(undefined);
      if (all && all.relation === relation && all.tab === tab) {
        source.current = undefined;
        setAll(undefined);
        return true;
      }
      const generator = services.listChildren(relation, category);
      source.current = generator;
      setAll({ relation, tab, rows: [], done: false, loading: true });
      void loadMore(generator);
      return true;
    },
    [all, services, loadMore],
  );

  const shown = all && view.relation === all.relation && view.tab === all.tab ? all : undefined;
  useEffect(() => {
    if (!shown || shown.done || shown.loading || !source.current) return;
    if ((view.row ?? 0) >= shown.rows.length - READ_AHEAD) void loadMore(source.current);
  }, [shown, view.row, loadMore]);

  /** Loads a listed child's whole document for the viewer (the samples have theirs already). */
  const loadDocument = useCallback(
    async (relation: string, sample: Sample) => {
      if (sample.doc !== undefined) return;
      sample.docState = 'loading';
      setAll((prev) => (prev ? { ...prev } : prev));
      try {
        sample.doc = await services.childDocument(relation, sample.id);
        sample.docState = undefined;
      } catch (caught) {
        sample.docState = `could not read the document: ${(caught as Error).message}`;
      }
      setAll((prev) => (prev ? { ...prev } : prev));
    },
    [services],
  );

  return { all: shown, toggle, loadDocument };
}
