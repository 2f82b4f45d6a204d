// Parsing of numeric and enumerated options into UserErrors that name the option.
import { UserError } from '../errors.js';

export function parseNumber(
  text: string,
  option: string,
  { min = -Infinity, integer = false, positive = false } = {},
): number {
  const t = text.trim();
  const x = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(t) ? Number(t) : NaN;
  if (!Number.isFinite(x)) throw new UserError(`${option}: '${text}' is not a number`);
  if (integer && !Number.isInteger(x)) throw new UserError(`${option}: '${text}' is not a whole number`);
  if (positive && x <= 0) throw new UserError(`${option}: must be greater than 0, not ${text}`);
  if (x < min) throw new UserError(`${option}: must be at least ${min}, not ${text}`);
  return x;
}

export function parseInt(text: string, option: string, min = 1): number {
  return parseNumber(text, option, { integer: true, min });
}

export function parseChoice<T extends string>(text: string, option: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(text))
    throw new UserError(`${option}: unknown value '${text}' (choose one of ${choices.join(', ')})`);
  return text as T;
}
