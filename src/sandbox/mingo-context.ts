import { BSON, type Document } from 'bson';
import { Context, evalExpr } from 'mingo/core';
import * as accumulatorOperators from 'mingo/operators/accumulator';
import * as expressionOperators from 'mingo/operators/expression';
import * as pipelineOperators from 'mingo/operators/pipeline';
import * as projectionOperators from 'mingo/operators/projection';
import * as queryOperators from 'mingo/operators/query';
import * as windowOperators from 'mingo/operators/window';
import { CommandError } from './command-error.ts';
import { storedOf } from './through-mingo.ts';
import { aggregationTypeName, mingoTypeQuery } from './type-names.ts';

/** How the sandbox runs mingo: with mongod's answers where mingo's differ, and no server-side scripting. */

/**
 * mingo's operators, with mongod's answer where mingo's differs: `$type` names (`objectId`, `binData`...) and
 * number types, the query `$type`, `$bsonSize`. Built whole, because mingo's default context would otherwise win
 * over an override.
 */
export const MONGOD_OPERATORS = Context.init({
  accumulator: accumulatorOperators,
  expression: {
    ...expressionOperators,
    $type: (obj: unknown, expr: unknown, options: Parameters<typeof evalExpr>[2]) =>
      aggregationTypeName(evalExpr(obj, Array.isArray(expr) ? expr[0] : expr, options)),
    // mongod 4.4+: a document's BSON size in bytes, null for null or missing, an error for anything else.
    $bsonSize: (obj: unknown, expr: unknown, options: Parameters<typeof evalExpr>[2]) => {
      const value = evalExpr(obj, Array.isArray(expr) ? expr[0] : expr, options);
      if (value === null || value === undefined) return null;
      if (typeof value !== 'object' || Array.isArray(value) || (value as { _bsontype?: string })._bsontype)
        throw new CommandError(
          31393,
          `$bsonSize requires a document input, found: ${aggregationTypeName(value)}`,
        );
      return BSON.calculateObjectSize(storedOf(value) as Document);
    },
  },
  pipeline: pipelineOperators,
  projection: projectionOperators,
  query: { ...queryOperators, $type: mingoTypeQuery as typeof queryOperators.$type },
  window: windowOperators,
});

/** mingo with scripting off (`$where`, `$function` and `$accumulator` refused, as on a locked-down mongod). */
export const MINGO_OPTIONS = {
  scriptEnabled: false,
  useStrictMode: true,
  context: MONGOD_OPERATORS,
} as const;
