// Unknown-field check for objects that kubernetes-models describes.
//
// kubernetes-models' validators check types, required fields and enums, but like the OpenAPI
// schemas they come from they accept fields they do not know, so a misspelt `readinessProbe`
// would pass. The API server refuses unknown fields (strict field validation, the kubectl default
// since Kubernetes 1.27). This walks an object alongside the TypeScript declarations that
// kubernetes-models ships (one interface a file, one property a line) and reports every field
// the declared type does not have. Fields whose type is declared inline (maps such as labels,
// and most custom resources' specs) are not descended into.

import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const NODE_MODULES = join(dirname(fileURLToPath(import.meta.url)), "node_modules");
const cache = new Map(); // declaration file -> Map(field -> declaration file of its type, or null)

function resolveImport(fromFile, specifier) {
  const base = specifier.startsWith(".")
    ? join(dirname(fromFile), specifier)
    : join(NODE_MODULES, specifier);
  const file = `${base}.d.ts`;
  return existsSync(file) ? file : null;
}

// The fields of the interface declared in `file`, each with the declaration file of its type
// when that type is another declared interface (or an array of one).
function interfaceFields(file) {
  if (cache.has(file)) return cache.get(file);
  let fields = null;
  if (file && existsSync(file)) {
    const text = readFileSync(file, "utf8");
    const imports = new Map();
    for (const m of text.matchAll(/^import \{ ([\w, ]+) \} from "([^"]+)";$/gm)) {
      for (const name of m[1].split(",")) imports.set(name.trim(), m[2]);
    }
    const body = /^export interface \w+(?: extends [\w, ]+)? \{\n([\s\S]*?)^\}/m.exec(text);
    if (body) {
      fields = new Map();
      for (const m of body[1].matchAll(/^ {4}"([^"]+)"\??: (.*)$/gm)) {
        const type = /^(?:Array<)?(\w+)>?;$/.exec(m[2]);
        const specifier = type && imports.get(type[1]);
        fields.set(m[1], specifier ? resolveImport(file, specifier) : null);
      }
    }
  }
  cache.set(file, fields);
  return fields;
}

function isPlainObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function walk(value, file, path, errors) {
  if (Array.isArray(value)) {
    value.forEach((item, i) => walk(item, file, `${path}/${i}`, errors));
    return;
  }
  if (!isPlainObject(value)) return;
  const fields = interfaceFields(file);
  if (!fields) return;
  for (const [key, child] of Object.entries(value)) {
    if (!fields.has(key)) {
      errors.push(`${path || "/"}: unknown field "${key}"`);
    } else if (fields.get(key)) {
      walk(child, fields.get(key), `${path}/${key}`, errors);
    }
  }
}

/**
 * Reports fields of `value` unknown to the kubernetes-models type declared at `module`
 * ("kubernetes-models/apps/v1/Deployment", "kubernetes-models/v1/Container"...). Returns
 * messages "<json path>: unknown field "<name>"", or [] when the declaration cannot be found.
 */
export function unknownFields(module, value, path = "") {
  const errors = [];
  walk(value, join(NODE_MODULES, `${module}.d.ts`), path, errors);
  return errors;
}

/** The names of the fields the type at `module` declares (for schemas built on top of it). */
export function declaredFields(module) {
  const fields = interfaceFields(join(NODE_MODULES, `${module}.d.ts`));
  if (!fields) throw new Error(`no type declaration for ${module}`);
  return [...fields.keys()];
}

/**
 * Validates `value` with a kubernetes-models class and returns its complaints as
 * "<json path>: <message>" lines (none when valid).
 */
export function schemaComplaints(Class, value, path = "") {
  try {
    new Class(value).validate();
    return [];
  } catch (e) {
    if (Array.isArray(e.errors) && e.errors.length > 0) {
      return e.errors.map((err) => {
        const extra = err.params?.allowedValues ? ` (${err.params.allowedValues.join(", ")})` : "";
        return `${path}${err.instancePath || ""}${err.instancePath || path ? "" : "/"}: ${err.message}${extra}`;
      });
    }
    return [`${path || "/"}: ${e.message}`];
  }
}
