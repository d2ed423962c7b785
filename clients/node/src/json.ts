/**
 * JSON helpers that keep int64 timestamps exact.
 *
 * JSON.parse turns every number into a double, so a timestamp above 2^53 loses its low bits.
 * In exact mode the client parses replies with parseExact, which returns the integer values
 * of the named keys (`ts`, …) as bigint, built from the digits of the source text. Node 20
 * has no reviver with source access (that arrived in V8 11.4 / Node 21), hence this small
 * parser. It is only used in exact mode; the default mode uses JSON.parse.
 */

const INT64_MAX = 9223372036854775807n;
const INT64_MIN = -9223372036854775808n;
const TWO_63 = 2 ** 63;

/** Timestamp is a point in time as the server stores it: an int64 in the caller's unit. */
export type Timestamp = number | bigint;

/**
 * stringify encodes a request payload as JSON. Unlike JSON.stringify it writes bigint values as
 * JSON integers, and it clamps numbers beyond the int64 range to the int64 bounds, so that
 * `Number.MAX_VALUE` or `Infinity` as "no upper bound" means what the caller meant.
 */
export function stringify(value: unknown): string {
  switch (typeof value) {
    case "string":
      return JSON.stringify(value);
    case "bigint":
      if (value > INT64_MAX) return INT64_MAX.toString();
      if (value < INT64_MIN) return INT64_MIN.toString();
      return value.toString();
    case "number":
      if (Number.isNaN(value)) return "null";
      if (value >= TWO_63) return INT64_MAX.toString();
      if (value <= -TWO_63) return INT64_MIN.toString();
      // Integers print without an exponent (1e21 would otherwise be "1e+21").
      return Number.isInteger(value) ? BigInt(value).toString() : JSON.stringify(value);
    case "boolean":
      return value ? "true" : "false";
    case "object": {
      if (value === null) return "null";
      if (Array.isArray(value)) return "[" + value.map((v) => (v === undefined ? "null" : stringify(v))).join(",") + "]";
      const parts: string[] = [];
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (v === undefined || typeof v === "function" || typeof v === "symbol") continue;
        parts.push(JSON.stringify(k) + ":" + stringify(v));
      }
      return "{" + parts.join(",") + "}";
    }
    default:
      return "null";
  }
}

const numberRE = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;

/** JSONSyntaxError is thrown by parseExact on text that is not JSON. */
export class JSONSyntaxError extends SyntaxError {}

/**
 * parseExact parses JSON text like JSON.parse, except that integer values of the keys in
 * `bigintKeys` become bigint (exactly, whatever their size).
 */
export function parseExact(text: string, bigintKeys: ReadonlySet<string>): unknown {
  let i = 0;
  const n = text.length;

  const fail = (what: string): never => {
    throw new JSONSyntaxError(`invalid JSON at offset ${i}: ${what}`);
  };
  const ws = () => {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else break;
    }
  };
  const str = (): string => {
    // Find the closing quote; hand the literal to JSON.parse, which handles every escape.
    const start = i;
    i++;
    let escaped = false;
    for (; i < n; i++) {
      const c = text.charCodeAt(i);
      if (c === 0x5c) {
        escaped = true;
        i++;
      } else if (c === 0x22) {
        i++;
        const lit = text.slice(start, i);
        return escaped ? (JSON.parse(lit) as string) : lit.slice(1, -1);
      } else if (c < 0x20) {
        fail("control character in string");
      }
    }
    return fail("unterminated string");
  };
  const num = (asBig: boolean): number | bigint => {
    numberRE.lastIndex = i;
    const m = numberRE.exec(text);
    if (!m) return fail("bad number");
    i += m[0].length;
    if (asBig && m[1] === undefined && m[2] === undefined) return BigInt(m[0]);
    return Number(m[0]);
  };
  const value = (key: string | null, depth: number): unknown => {
    if (depth > 256) fail("nesting too deep");
    ws();
    const c = text[i];
    if (c === "{") {
      i++;
      const obj: Record<string, unknown> = {};
      ws();
      if (text[i] === "}") {
        i++;
        return obj;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail("expected key");
        const k = str();
        ws();
        if (text[i] !== ":") fail("expected ':'");
        i++;
        const v = value(k, depth + 1);
        // defineProperty keeps a "__proto__" key an ordinary field, as JSON.parse does.
        Object.defineProperty(obj, k, { value: v, enumerable: true, writable: true, configurable: true });
        ws();
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i] === "}") {
          i++;
          return obj;
        }
        fail("expected ',' or '}'");
      }
    }
    if (c === "[") {
      i++;
      const arr: unknown[] = [];
      ws();
      if (text[i] === "]") {
        i++;
        return arr;
      }
      for (;;) {
        // Array elements inherit the key, so `"ts":[1,2]` would be exact too.
        arr.push(value(key, depth + 1));
        ws();
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i] === "]") {
          i++;
          return arr;
        }
        fail("expected ',' or ']'");
      }
    }
    if (c === '"') return str();
    if (c === "t" && text.startsWith("true", i)) {
      i += 4;
      return true;
    }
    if (c === "f" && text.startsWith("false", i)) {
      i += 5;
      return false;
    }
    if (c === "n" && text.startsWith("null", i)) {
      i += 4;
      return null;
    }
    return num(key !== null && bigintKeys.has(key));
  };

  const v = value(null, 0);
  ws();
  if (i !== n) fail("trailing characters");
  return v;
}
