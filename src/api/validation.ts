// Request validation against the TypeBox schemas, strict about types: a JSON body is checked as
// sent (a number is not turned into a string), and a query-string integer must be written as
// one ("5", not "5.5" or "5abc"). A failure becomes a `validation_error` ApiError that names each
// field at fault in the API's own words.
import { TypeBoxValidatorCompiler, type TSchema } from '@fastify/type-provider-typebox';
import type { FastifySchemaCompiler, FastifySchemaValidationError } from 'fastify';
import type { ErrorDetail } from '../domain/errors.js';
import { validationFailed, type ApiError } from './errors.js';

/** A schema may carry the words to use when its value breaks one of its constraints. */
export const ERROR_MESSAGE_KEY = 'x-error-message';

const PART_NAMES: Record<string, string> = {
  body: 'request body',
  querystring: 'query string',
  params: 'path',
  headers: 'headers',
};

const INTEGER_TEXT = /^-?\d{1,15}$/;

export const validatorCompiler: FastifySchemaCompiler<TSchema> = (route) => {
  const part = route.httpPart ?? 'body';
  // Compiled as a body: the type provider's compiler then checks values as given, without the
  // lenient conversion it applies to other parts (which reads "5.5" as the integer 5).
  const check = TypeBoxValidatorCompiler({ ...route, httpPart: 'body' });
  return (data: unknown) => {
    const value = part === 'querystring' ? withQueryIntegers(route.schema, data) : data;
    const result = check(value);
    if (typeof result !== 'object' || result === null || 'then' in result || !result.error) return result;
    const errors = Array.isArray(result.error) ? result.error : [];
    return { error: describeFailure(route.schema, part, errors) };
  };
};

/** Query values arrive as text: the ones the schema declares as integers become numbers when they are written as one. */
function withQueryIntegers(schema: TSchema, data: unknown): unknown {
  const properties = propertiesOf(schema);
  if (!properties || !isRecord(data)) return data;
  const converted: Record<string, unknown> = { ...data };
  for (const [name, value] of Object.entries(data)) {
    const property = properties[name];
    if (
      typeof value === 'string' &&
      isRecord(property) &&
      property.type === 'integer' &&
      INTEGER_TEXT.test(value)
    ) {
      converted[name] = Number(value);
    }
  }
  return converted;
}

export function describeFailure(
  schema: TSchema,
  part: string,
  errors: readonly FastifySchemaValidationError[],
): ApiError {
  const details = detailsOf(schema, errors);
  const where = PART_NAMES[part] ?? part;
  const summary = details.map((detail) => `${detail.field || 'it'} ${detail.message}`).join('; ');
  return validationFailed(`Invalid ${where}: ${summary || 'it does not match the schema'}.`, details);
}

/** One detail per field, in the order found; TypeBox may report several errors for one value. */
function detailsOf(schema: TSchema, errors: readonly FastifySchemaValidationError[]): ErrorDetail[] {
  const byField = new Map<string, string>();
  const add = (field: string, message: string): void => {
    if (!byField.has(field)) byField.set(field, message);
  };
  for (const error of errors) {
    const params = isRecord(error.params) ? error.params : {};
    const field = fieldOf(error.instancePath);
    switch (error.keyword) {
      case 'required':
        for (const name of stringList(params.requiredProperties ?? params.missingProperty)) {
          add(joinField(field, name), 'is required');
        }
        break;
      case 'additionalProperties': {
        const known = Object.keys(propertiesOf(subschemaAt(schema, error.schemaPath)) ?? {});
        const hint = known.length > 0 ? ` (known: ${known.join(', ')})` : '';
        for (const name of stringList(params.additionalProperties ?? params.additionalProperty)) {
          add(joinField(field, name), `is not a known field${hint}`);
        }
        break;
      }
      case 'boolean':
        // "schema is false": an additional property, already reported by name just above or below.
        break;
      default:
        add(field, messageFor(error.keyword, params, error.message, subschemaAt(schema, error.schemaPath)));
    }
  }
  return [...byField].map(([field, message]) => ({ field, message }));
}

function messageFor(
  keyword: string,
  params: Record<string, unknown>,
  fallback: string | undefined,
  schema: unknown,
): string {
  const custom = isRecord(schema) ? schema[ERROR_MESSAGE_KEY] : undefined;
  if (typeof custom === 'string' && keyword !== 'type') return custom;
  switch (keyword) {
    case 'type':
      return `must be ${withArticle(String(params.type))}`;
    case 'enum':
      return `must be one of: ${stringList(params.allowedValues).join(', ')}`;
    case 'minLength':
      return params.limit === 1
        ? 'must not be empty'
        : `must be at least ${String(params.limit)} characters long`;
    case 'maxLength':
      return `must be at most ${String(params.limit)} characters long`;
    case 'minimum':
      return `must be at least ${String(params.limit)}`;
    case 'maximum':
      return `must be at most ${String(params.limit)}`;
    case 'pattern':
      return `must match the pattern ${String(params.pattern)}`;
    default:
      return fallback ?? 'is not valid';
  }
}

/** '/a/b' → 'a/b'; '' when the error is about the whole body, query or path. */
function fieldOf(instancePath: string): string {
  return instancePath
    .replace(/^\//, '')
    .split('/')
    .map((segment) => segment.replace(/~1/g, '/').replace(/~0/g, '~'))
    .join('/');
}

function joinField(parent: string, name: string): string {
  return parent === '' ? name : `${parent}/${name}`;
}

function withArticle(type: string): string {
  const words: Record<string, string> = {
    object: 'a JSON object',
    array: 'an array',
    string: 'a string',
    integer: 'an integer',
    number: 'a number',
    boolean: 'true or false',
    null: 'null',
  };
  return words[type] ?? type;
}

/** The part of a schema a JSON pointer fragment ('#/properties/a') designates. */
function subschemaAt(schema: TSchema, schemaPath: string): unknown {
  let node: unknown = schema;
  for (const segment of schemaPath.replace(/^#\/?/, '').split('/')) {
    if (segment === '') continue;
    if (!isRecord(node) && !Array.isArray(node)) return undefined;
    node = (node as Record<string, unknown>)[segment.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return node;
}

function propertiesOf(schema: unknown): Record<string, unknown> | undefined {
  return isRecord(schema) && isRecord(schema.properties) ? schema.properties : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function stringList(value: unknown): string[] {
  if (Array.isArray(value)) return value.map(String);
  return value === undefined ? [] : [String(value)];
}
