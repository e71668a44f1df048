#!/usr/bin/env node
// Validates Kubernetes and KServe manifests before they reach a cluster.
//
//   node validate.mjs [--name LABEL] [FILE | -]...      (no FILE: standard input)
//
// Every document of the files given (multi-document YAML, as `kubectl kustomize` prints) forms
// one set: one rendered overlay, or the KServe runtime with an InferenceService. Each object is
// checked against the schema of its apiVersion and kind, and for fields that schema does not
// declare; then the set is checked for duplicate objects and for references that do not resolve
// inside it (Service, PodDisruptionBudget and ServiceMonitor selectors, HPA targets, named ports,
// volumes, an InferenceService's runtime).
//
// Schemas: kubernetes-models (the built-in API groups: core, apps, autoscaling/v2, policy/v1, ...),
// @kubernetes-models/prometheus-operator (monitoring.coreos.com) and kserve.mjs (serving.kserve.io,
// for which there is no kubernetes-models package). An object whose apiVersion and kind none of
// them knows is an error, not a pass.
//
// Exit status: 0 when every object is valid, 1 when any is not, 2 for bad usage or unreadable input.

import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import { schemaComplaints, unknownFields } from "./fields.mjs";
import { isKServe, validateKServe } from "./kserve.mjs";

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const WORKLOAD_KINDS = new Set(["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"]);

function usage(message) {
  if (message) console.error(`validate: ${message}`);
  console.error("usage: node validate.mjs [--name LABEL] [FILE | -]...");
  process.exit(2);
}

// ---- Reading ------------------------------------------------------------------------------------

function readDocuments(source) {
  let text;
  try {
    text = source === "-" ? readFileSync(0, "utf8") : readFileSync(source, "utf8");
  } catch (e) {
    console.error(`validate: cannot read ${source === "-" ? "standard input" : source}: ${e.message}`);
    process.exit(2);
  }
  const objects = [];
  const errors = [];
  // YAML 1.1, as Kubernetes reads manifests (`yes` is a boolean there, not a string).
  parseAllDocuments(text, { version: "1.1" }).forEach((doc, index) => {
    const where = `${source === "-" ? "<stdin>" : source}#${index + 1}`;
    if (doc.errors.length > 0) {
      errors.push(`${where}: YAML: ${doc.errors.map((e) => e.message).join("; ")}`);
      return;
    }
    const value = doc.toJS({ maxAliasCount: 100 });
    if (value === null || value === undefined) return; // an empty document
    if (typeof value !== "object" || Array.isArray(value)) {
      errors.push(`${where}: not a Kubernetes object (a YAML ${Array.isArray(value) ? "list" : typeof value})`);
      return;
    }
    objects.push({ where, obj: value });
  });
  return { objects, errors };
}

// ---- Schemas ------------------------------------------------------------------------------------

// The module of kubernetes-models (or of its prometheus-operator package) declaring this kind.
function modelModule(apiVersion, kind) {
  if (typeof apiVersion !== "string" || typeof kind !== "string") return null;
  if (!/^[A-Z][A-Za-z0-9]*$/.test(kind)) return null;
  const m = /^(?:([a-z0-9.-]+)\/)?(v\d+(?:(?:alpha|beta)\d+)?)$/.exec(apiVersion);
  if (!m) return null;
  const [, group, version] = m;
  if (!group) return `kubernetes-models/${version}/${kind}`;
  if (group === "monitoring.coreos.com") {
    return `@kubernetes-models/prometheus-operator/${group}/${version}/${kind}`;
  }
  if (!group.includes(".") || group.endsWith(".k8s.io")) {
    return `kubernetes-models/${group}/${version}/${kind}`;
  }
  return null;
}

async function schemaErrors(obj) {
  const { apiVersion, kind } = obj;
  if (isKServe(apiVersion, kind)) return validateKServe(obj);
  const module = modelModule(apiVersion, kind);
  let Class = null;
  if (module) {
    try {
      Class = (await import(module))[kind];
    } catch (e) {
      if (!["ERR_MODULE_NOT_FOUND", "ERR_PACKAGE_PATH_NOT_EXPORTED"].includes(e.code)) throw e;
    }
  }
  if (typeof Class !== "function") {
    return [`no schema for apiVersion "${apiVersion}", kind "${kind}": nothing validates it ` +
            "(add its schema package to deploy/validate, or fix the apiVersion/kind)"];
  }
  return [...schemaComplaints(Class, obj), ...unknownFields(module, obj)];
}

// ---- Checks inside one object -------------------------------------------------------------------

function labelsMatch(selector, labels) {
  if (!selector || typeof selector !== "object") return false;
  const entries = Object.entries(selector);
  return entries.length > 0 && entries.every(([k, v]) => labels?.[k] === v);
}

function podSpecErrors(spec, path) {
  const errors = [];
  if (!spec || typeof spec !== "object") return errors;
  const volumes = new Set();
  for (const [i, volume] of (spec.volumes ?? []).entries()) {
    if (!volume || typeof volume !== "object") continue;
    volumes.add(volume.name);
    const sources = Object.keys(volume).filter((k) => k !== "name" && volume[k] !== null);
    if (sources.length !== 1) {
      errors.push(`${path}/volumes/${i}: volume "${volume.name}" needs exactly one source, ` +
                  `has ${sources.length}${sources.length ? ` (${sources.join(", ")})` : ""}`);
    }
  }
  const containerNames = new Set();
  const all = [...(spec.initContainers ?? []).map((c, i) => [c, `${path}/initContainers/${i}`]),
               ...(spec.containers ?? []).map((c, i) => [c, `${path}/containers/${i}`])];
  for (const [c, cpath] of all) {
    if (!c || typeof c !== "object") continue;
    if (containerNames.has(c.name)) errors.push(`${cpath}: container name "${c.name}" is used twice`);
    containerNames.add(c.name);
    const portNames = new Set();
    for (const [j, port] of (c.ports ?? []).entries()) {
      if (port?.name === undefined) continue;
      if (portNames.has(port.name)) errors.push(`${cpath}/ports/${j}: port name "${port.name}" is used twice`);
      if (String(port.name).length > 15) errors.push(`${cpath}/ports/${j}: port name "${port.name}" is longer than 15 characters`);
      portNames.add(port.name);
    }
    for (const [j, mount] of (c.volumeMounts ?? []).entries()) {
      if (mount?.name !== undefined && !volumes.has(mount.name)) {
        errors.push(`${cpath}/volumeMounts/${j}: no volume named "${mount.name}" in the pod`);
      }
    }
    for (const probe of ["startupProbe", "livenessProbe", "readinessProbe"]) {
      const port = c[probe]?.httpGet?.port ?? c[probe]?.tcpSocket?.port;
      if (typeof port === "string" && !portNames.has(port)) {
        errors.push(`${cpath}/${probe}: port "${port}" is not a named port of the container`);
      }
    }
  }
  return errors;
}

function objectErrors(obj) {
  const errors = [];
  const name = obj.metadata?.name;
  if (typeof name !== "string" || !DNS_SUBDOMAIN.test(name) || name.length > 253) {
    errors.push(`/metadata/name: ${JSON.stringify(name)} is not a valid object name`);
  }
  if (WORKLOAD_KINDS.has(obj.kind)) {
    const template = obj.spec?.template;
    const selector = obj.spec?.selector?.matchLabels;
    if (selector && !labelsMatch(selector, template?.metadata?.labels)) {
      errors.push("/spec/selector: matchLabels do not match the pod template's labels");
    }
    errors.push(...podSpecErrors(template?.spec, "/spec/template/spec"));
  }
  if (obj.kind === "ServingRuntime" || obj.kind === "ClusterServingRuntime") {
    errors.push(...podSpecErrors(obj.spec, "/spec"));
  }
  if (obj.kind === "HorizontalPodAutoscaler") {
    const { minReplicas = 1, maxReplicas } = obj.spec ?? {};
    if (Number.isInteger(maxReplicas) && minReplicas > maxReplicas) {
      errors.push(`/spec: minReplicas ${minReplicas} exceeds maxReplicas ${maxReplicas}`);
    }
  }
  return errors;
}

// ---- Checks across the set ------------------------------------------------------------------------

function setErrors(objects) {
  const errors = []; // [object entry or null, message]
  const ns = (o) => o.metadata?.namespace ?? "";
  const group = (o) => (String(o.apiVersion).includes("/") ? String(o.apiVersion).split("/")[0] : "");
  const seen = new Map();
  for (const entry of objects) {
    const o = entry.obj;
    const key = `${group(o)}/${o.kind}/${ns(o)}/${o.metadata?.name}`;
    if (seen.has(key)) errors.push([entry, `defined twice (also ${seen.get(key)})`]);
    else seen.set(key, entry.where);
  }
  const all = objects.map((e) => e.obj);
  const workloads = all.filter((o) => WORKLOAD_KINDS.has(o.kind));
  const podsOf = (selector, namespace) => workloads.filter(
    (w) => ns(w) === namespace && labelsMatch(selector, w.spec?.template?.metadata?.labels));
  const containerPortNames = (w) => new Set((w.spec?.template?.spec?.containers ?? [])
    .flatMap((c) => (c.ports ?? []).map((p) => p.name)));
  const services = all.filter((o) => o.kind === "Service");

  for (const entry of objects) {
    const o = entry.obj;
    if (o.kind === "Service" && o.spec?.selector && Object.keys(o.spec.selector).length > 0) {
      const matched = podsOf(o.spec.selector, ns(o));
      if (matched.length === 0) {
        errors.push([entry, "/spec/selector: selects no workload's pods in this set"]);
      }
      for (const [i, port] of (o.spec.ports ?? []).entries()) {
        if (typeof port?.targetPort === "string" &&
            matched.length > 0 && !matched.some((w) => containerPortNames(w).has(port.targetPort))) {
          errors.push([entry, `/spec/ports/${i}: targetPort "${port.targetPort}" is no container port name of the selected pods`]);
        }
      }
    }
    if (o.kind === "PodDisruptionBudget") {
      const selector = o.spec?.selector?.matchLabels;
      if (!selector || podsOf(selector, ns(o)).length === 0) {
        errors.push([entry, "/spec/selector: selects no workload's pods in this set"]);
      }
    }
    if (o.kind === "HorizontalPodAutoscaler") {
      const ref = o.spec?.scaleTargetRef ?? {};
      if (!all.some((t) => t.kind === ref.kind && t.metadata?.name === ref.name && ns(t) === ns(o))) {
        errors.push([entry, `/spec/scaleTargetRef: no ${ref.kind} "${ref.name}" in this set`]);
      }
    }
    if (o.kind === "ServiceMonitor") {
      const selector = o.spec?.selector?.matchLabels;
      const namespaces = o.spec?.namespaceSelector?.matchNames ?? [ns(o)];
      const matched = services.filter((s) => namespaces.includes(ns(s)) &&
                                             labelsMatch(selector, s.metadata?.labels));
      if (matched.length === 0) {
        errors.push([entry, "/spec/selector: selects no Service in this set"]);
      }
      for (const [i, endpoint] of (o.spec?.endpoints ?? []).entries()) {
        if (endpoint?.port !== undefined && matched.length > 0 &&
            !matched.some((s) => (s.spec?.ports ?? []).some((p) => p.name === endpoint.port))) {
          errors.push([entry, `/spec/endpoints/${i}: port "${endpoint.port}" is no port name of the selected Services`]);
        }
      }
    }
    if (o.kind === "InferenceService") {
      const model = o.spec?.predictor?.model ?? {};
      const runtimes = all.filter((r) => r.kind === "ClusterServingRuntime" ||
                                         (r.kind === "ServingRuntime" && ns(r) === ns(o)));
      if (model.runtime && runtimes.length > 0) {
        const runtime = runtimes.find((r) => r.metadata?.name === model.runtime);
        if (!runtime) {
          errors.push([entry, `/spec/predictor/model/runtime: no ServingRuntime "${model.runtime}" in this set`]);
        } else {
          const formats = (runtime.spec?.supportedModelFormats ?? []).map((f) => f.name);
          if (model.modelFormat?.name && !formats.includes(model.modelFormat.name)) {
            errors.push([entry, `/spec/predictor/model/modelFormat: runtime "${model.runtime}" does not support "${model.modelFormat.name}" (it supports ${formats.join(", ") || "nothing"})`]);
          }
          const protocols = runtime.spec?.protocolVersions ?? [];
          if (model.protocolVersion && protocols.length > 0 && !protocols.includes(model.protocolVersion)) {
            errors.push([entry, `/spec/predictor/model/protocolVersion: runtime "${model.runtime}" does not speak "${model.protocolVersion}" (only ${protocols.join(", ")})`]);
          }
        }
      }
    }
  }
  return errors;
}

// ---- Main -----------------------------------------------------------------------------------------

async function main(argv) {
  let name = null;
  const sources = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--name") {
      name = argv[++i];
      if (!name) usage("--name needs a value");
    } else if (argv[i] === "-h" || argv[i] === "--help") {
      usage();
    } else if (argv[i].startsWith("--")) {
      usage(`unknown option ${argv[i]}`);
    } else {
      sources.push(argv[i]);
    }
  }
  if (sources.length === 0) sources.push("-");
  const label = name ?? sources.join(" ");

  const objects = [];
  const problems = [];
  for (const source of sources) {
    const read = readDocuments(source);
    objects.push(...read.objects);
    problems.push(...read.errors);
  }
  const describe = (o) => `${o.kind ?? "?"}/${o.metadata?.name ?? "?"}`;
  for (const entry of objects) {
    const { obj } = entry;
    for (const message of [...await schemaErrors(obj), ...objectErrors(obj)]) {
      problems.push(`${entry.where} ${describe(obj)}: ${message}`);
    }
  }
  for (const [entry, message] of setErrors(objects)) {
    problems.push(`${entry.where} ${describe(entry.obj)}: ${message}`);
  }
  if (objects.length === 0 && problems.length === 0) {
    problems.push("no objects to validate");
  }
  if (problems.length > 0) {
    console.error(`validate: ${label}: ${problems.length} problem(s)`);
    for (const p of problems) console.error(`  ${p}`);
    return 1;
  }
  console.log(`validate: ${label}: ${objects.length} objects valid ` +
              `(${objects.map((e) => describe(e.obj)).join(", ")})`);
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
