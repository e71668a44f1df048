// Schemas for the KServe objects Slipway's manifests use: ServingRuntime and ClusterServingRuntime
// (serving.kserve.io/v1alpha1) and InferenceService (serving.kserve.io/v1beta1).
//
// kubernetes-models has no KServe package, so these are written from KServe's API types
// (ServingRuntimeSpec, PredictorSpec = PodSpec + ComponentExtensionSpec + one implementation,
// ModelSpec = modelFormat + runtime + PredictorExtensionSpec with an inline Container). They
// cover the fields of those types, not the whole CRD: multi-node (workerSpec), transformers and
// explainers, and the framework-specific predictors (sklearn:, onnx:, triton: ...) are refused
// as unknown, so a manifest that needs them needs this file extended first. The Kubernetes parts
// (containers, volumes, pod fields, deployment strategy) are validated with kubernetes-models.

import Ajv from "ajv";
import { declaredFields, schemaComplaints, unknownFields } from "./fields.mjs";

const K8S = "kubernetes-models";
const OBJECT_META = "@kubernetes-models/apimachinery/apis/meta/v1/ObjectMeta";
const modelClasses = new Map();

// "v1/Container" -> kubernetes-models/v1/Container; a module path with a scope stays as it is.
const fullModule = (module) => (module.startsWith("@") ? module : `${K8S}/${module}`);

async function modelClass(module) {
  if (!modelClasses.has(module)) {
    const mod = await import(fullModule(module));
    modelClasses.set(module, mod[module.split("/").pop()]);
  }
  return modelClasses.get(module);
}

// Preload what the `k8s` keyword below validates with (ajv keywords are synchronous).
const K8S_TYPES = ["v1/Container", "v1/Volume", "v1/Affinity", "v1/Toleration",
  "v1/LocalObjectReference", "v1/EnvVar", "v1/PodSpec", "v1/ContainerPort",
  "apps/v1/DeploymentStrategy", OBJECT_META];
await Promise.all(K8S_TYPES.map(modelClass));

// Checks a value against a kubernetes-models type: its schema and its declared fields.
function k8sErrors(module, value, path) {
  return [...schemaComplaints(modelClasses.get(module), value, path),
          ...unknownFields(fullModule(module), value, path)];
}

const ajv = new Ajv({ allErrors: true, strict: true });
ajv.addKeyword({
  keyword: "k8s",
  type: "object",
  schemaType: "string",
  errors: true,
  validate: function k8s(module, value, _schema, ctx) {
    const errors = k8sErrors(module, value, ctx?.instancePath ?? "");
    k8s.errors = errors.map((message) => ({ keyword: "k8s", message, params: {} }));
    return errors.length === 0;
  },
});

const str = { type: "string" };
const bool = { type: "boolean" };
const int = { type: "integer" };
const stringMap = { type: "object", additionalProperties: { type: "string" } };
const protocol = { enum: ["v1", "v2", "grpc-v1", "grpc-v2"] };
const objectMeta = { type: "object", k8s: OBJECT_META };
const listOf = (module) => ({ type: "array", items: { type: "object", k8s: module } });

const servingRuntimeSpec = {
  type: "object",
  additionalProperties: false,
  required: ["containers"],
  properties: {
    supportedModelFormats: {
      type: "array",
      items: {
        type: "object",
        additionalProperties: false,
        required: ["name"],
        properties: { name: { type: "string", minLength: 1 }, version: str, autoSelect: bool,
          priority: { type: "integer", minimum: 1 } },
      },
    },
    multiModel: bool,
    disabled: bool,
    protocolVersions: { type: "array", items: protocol },
    containers: { ...listOf("v1/Container"), minItems: 1 },
    volumes: listOf("v1/Volume"),
    nodeSelector: stringMap,
    affinity: { type: "object", k8s: "v1/Affinity" },
    tolerations: listOf("v1/Toleration"),
    labels: stringMap,
    annotations: stringMap,
    imagePullSecrets: listOf("v1/LocalObjectReference"),
    hostIPC: bool,
    grpcEndpoint: str,
    grpcDataEndpoint: str,
    httpDataEndpoint: str,
    replicas: { type: "integer", minimum: 0, maximum: 65535 },
    storageHelper: { type: "object", additionalProperties: false, properties: { disabled: bool } },
    builtInAdapter: {
      type: "object",
      additionalProperties: false,
      properties: { serverType: str, runtimeManagementPort: int, memBufferBytes: int,
        modelLoadingTimeoutMillis: int, env: listOf("v1/EnvVar") },
    },
  },
};

// ModelSpec: KServe's own fields plus an inline corev1.Container (checked by the `k8s` keyword
// after the KServe fields are taken out; see validateModelSpec below).
const MODEL_OWN_FIELDS = {
  modelFormat: {
    type: "object",
    additionalProperties: false,
    required: ["name"],
    properties: { name: { type: "string", minLength: 1 }, version: str },
  },
  runtime: str,
  storageUri: { type: "string", minLength: 1 },
  runtimeVersion: str,
  protocolVersion: protocol,
  storage: { type: "object" },
};

const COMPONENT_EXTENSION_FIELDS = {
  minReplicas: { type: "integer", minimum: 0 },
  maxReplicas: { type: "integer", minimum: 0 },
  scaleTarget: { type: "integer", minimum: 1 },
  scaleMetric: { enum: ["cpu", "memory", "concurrency", "rps"] },
  scaleMetricType: { enum: ["Utilization", "Value", "AverageValue"] },
  autoScaling: { type: "object" },
  containerConcurrency: { type: "integer", minimum: 0 },
  timeout: { type: "integer", minimum: 0 },
  canaryTrafficPercent: { type: "integer", minimum: 0, maximum: 100 },
  logger: {
    type: "object",
    additionalProperties: false,
    properties: { url: str, mode: { enum: ["all", "request", "response"] } },
  },
  batcher: {
    type: "object",
    additionalProperties: false,
    properties: { maxBatchSize: int, maxLatency: int, timeout: int },
  },
  labels: stringMap,
  annotations: stringMap,
  deploymentStrategy: { type: "object", k8s: "apps/v1/DeploymentStrategy" },
};

const POD_SPEC_FIELDS = declaredFields(`${K8S}/v1/PodSpec`);

const predictorSpec = {
  type: "object",
  additionalProperties: false,
  required: ["model"],
  properties: {
    ...COMPONENT_EXTENSION_FIELDS,
    ...Object.fromEntries(POD_SPEC_FIELDS.map((f) => [f, {}])), // checked as a PodSpec below
    model: { type: "object" }, // checked by validateModelSpec below
  },
};

const validators = {
  "serving.kserve.io/v1alpha1/ServingRuntime": ajv.compile({
    type: "object",
    required: ["apiVersion", "kind", "metadata", "spec"],
    additionalProperties: false,
    properties: { apiVersion: str, kind: str, metadata: objectMeta, spec: servingRuntimeSpec },
  }),
  "serving.kserve.io/v1beta1/InferenceService": ajv.compile({
    type: "object",
    required: ["apiVersion", "kind", "metadata", "spec"],
    additionalProperties: false,
    properties: {
      apiVersion: str,
      kind: str,
      metadata: objectMeta,
      spec: {
        type: "object",
        additionalProperties: false,
        required: ["predictor"],
        properties: { predictor: predictorSpec },
      },
    },
  }),
};
validators["serving.kserve.io/v1alpha1/ClusterServingRuntime"] =
  validators["serving.kserve.io/v1alpha1/ServingRuntime"];

const validateModelOwn = ajv.compile({
  type: "object",
  required: ["modelFormat"],
  properties: MODEL_OWN_FIELDS,
});

function validateModelSpec(model, path) {
  const errors = [];
  if (!validateModelOwn(model)) {
    errors.push(...validateModelOwn.errors.map((e) => `${path}${e.instancePath}: ${e.message}`));
  }
  // The rest is an inline corev1.Container; KServe names it kserve-container.
  const container = { name: "kserve-container" };
  for (const [key, value] of Object.entries(model)) {
    if (!(key in MODEL_OWN_FIELDS)) container[key] = value;
  }
  errors.push(...k8sErrors("v1/Container", container, path));
  return errors;
}

function validatePredictorPodSpec(predictor, path) {
  const podSpec = { containers: [] };
  for (const key of POD_SPEC_FIELDS) {
    if (key in predictor) podSpec[key] = predictor[key];
  }
  return k8sErrors("v1/PodSpec", podSpec, path);
}

/** True when this module validates objects of this apiVersion and kind. */
export function isKServe(apiVersion, kind) {
  return `${apiVersion}/${kind}` in validators;
}

/** Error messages for a KServe object (isKServe must hold for it). */
export function validateKServe(obj) {
  const validate = validators[`${obj.apiVersion}/${obj.kind}`];
  const errors = [];
  if (!validate(obj)) {
    for (const e of validate.errors) {
      const where = e.instancePath || "/";
      const extra = e.keyword === "additionalProperties"
        ? ` "${e.params.additionalProperty}" (not a field of KServe's ${obj.kind} this ` +
          "validator knows; see deploy/validate/kserve.mjs)"
        : "";
      errors.push(e.keyword === "k8s" ? e.message : `${where}: ${e.message}${extra}`);
    }
  }
  const predictor = obj.spec?.predictor;
  if (obj.kind === "InferenceService" && predictor && typeof predictor === "object") {
    if (predictor.model && typeof predictor.model === "object") {
      errors.push(...validateModelSpec(predictor.model, "/spec/predictor/model"));
    }
    errors.push(...validatePredictorPodSpec(predictor, "/spec/predictor"));
    const { minReplicas, maxReplicas } = predictor;
    if (Number.isInteger(minReplicas) && Number.isInteger(maxReplicas) && maxReplicas !== 0 &&
        minReplicas > maxReplicas) {
      errors.push(`/spec/predictor: minReplicas ${minReplicas} exceeds maxReplicas ${maxReplicas}`);
    }
  }
  return errors;
}
