#!/usr/bin/env node
// Type-checks what this repository says about Northflank's wire format against the
// types of Northflank's API client (@northflank/js-client):
// - every node of the rendered template against the request type of its kind;
// - every canned answer of the local stand-in of Northflank's API
//   (crates/northflank/tests/fixtures/northflank-api/*.json) against the result type
//   of its endpoint, and every node of a template run in it as the template's nodes are.
// Writes generated/run-*/check.ts, one typed constant per value, and runs `tsc --noEmit`
// on it. Exit code 0 when everything fits, 1 otherwise. Each run uses its own
// directory (removed afterwards), so runs can overlap.
//
// Usage: node typecheck.mjs [path/to/template.json] [--responses DIR]
//   (defaults: ../../northflank/template.json, ../../crates/northflank/tests/fixtures/northflank-api)

import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));

function fail(message) {
  console.error(`northflank-types: ${message}`);
  process.exit(1);
}

function parseArguments(args) {
  const options = {
    template: join(here, "../../northflank/template.json"),
    responses: join(here, "../../crates/northflank/tests/fixtures/northflank-api"),
  };
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--responses" && i + 1 < args.length) options.responses = args[++i];
    else if (args[i].startsWith("-")) fail(`unknown option ${args[i]} (usage: typecheck.mjs [template.json] [--responses DIR])`);
    else options.template = args[i];
  }
  return { template: resolve(options.template), responses: resolve(options.responses) };
}

function readJson(path, what) {
  try {
    return JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    fail(`cannot read ${what} ${path}: ${error.message}`);
  }
}

// The request type each node's `spec` must satisfy. Kinds that only steer the
// workflow have no request type in the client; they get the small structural
// types declared in the generated file.
const specTypes = {
  Project: 'CreateProjectRequest["data"]',
  Addon: 'CreateAddonRequest["data"]',
  SecretGroup: 'CreateSecretRequest["data"]',
  ManualJob: 'CreateJobManualRequest["data"]',
  CronJob: 'CreateJobCronRequest["data"]',
  DeploymentService: 'CreateServiceDeploymentRequest["data"]',
  JobRun: 'StartJobRunRequest["data"] & { jobId: string; projectId?: string }',
  Workflow: "WorkflowSpec",
  Condition: "ConditionSpec",
};

// The result type of each endpoint the CLI calls, by the name of the stand-in's
// file (`<endpoint>[.<case>].json`). `stored` finds the template in a template
// answer: the stand-in answers with the file plus the content fields of the
// template it holds (CONTENT), so those fields must not be in the file and are
// checked here with the rendered template's. `run` marks answers holding a run.
const CONTENT = ["name", "description", "apiVersion", "arguments", "spec"];
const endpoints = {
  "get-template": { type: "GetTemplateResult", stored: (data) => data },
  "create-template": { type: "CreateTemplateResult", stored: (data) => data?.template },
  "update-template": { type: "UpdateTemplateResult", stored: (data) => data?.template },
  "run-template": { type: "RunTemplateResult", run: true },
  "get-template-run": { type: "GetTemplaterunResult", run: true },
  "abort-template-run": { type: "AbortTemplaterunResult", run: true },
};

// A Condition node waits for one kind of resource, and each kind has exactly one
// condition type and its own data: the Condition node schema of Northflank's API
// reference (https://northflank.com/docs/v1/api/templates/create-template, node
// kind `Condition`). The js-client types template specs as `any`, so the union is
// declared here, one member per kind, which ties `spec.type` and `spec.data` to `kind`.
// A run's nodes carry their state in `response` (get template run, same reference).
const declarations = [
  "type WorkflowSpec = {",
  '  type: "sequential" | "parallel";',
  "  steps: unknown[];",
  "  context?: { projectId: string };",
  "};",
  "type Templated = string; // `${refs.…}` / `${args.…}`, resolved by Northflank",
  "type ConditionTimeout = { timeoutDuration?: number | Templated };",
  "type ConditionSpec =",
  '  | { kind: "Addon"; spec: { type: "running"; data?: { projectId?: string; addonId?: string } & ConditionTimeout } }',
  '  | { kind: "AddonBackup"; spec: { type: "success"; data?: { projectId?: string; addonId?: string; backupId?: string } } }',
  '  | { kind: "AddonImport"; spec: { type: "success"; data?: { projectId?: string; addonId?: string; importId?: string } } }',
  '  | { kind: "Build"; spec: { type: "success"; data?: { projectId?: string; buildId?: string } } }',
  '  | { kind: "BYOCCluster"; spec: { type: "running"; data?: { clusterId?: string } & ConditionTimeout } }',
  '  | { kind: "JobRun"; spec: { type: "success"; data?: { projectId?: string; jobId?: string; runId?: string } } }',
  '  | { kind: "Service"; spec: { type: "running"; data?: { projectId?: string; serviceId?: string } & ConditionTimeout } }',
  '  | { kind: "VCS"; spec: { type: "createRepoFromSourceSuccess"; data?: { trackerId?: string } } };',
  'type Node = { kind: string; ref?: string; spec: unknown; condition?: "success" };',
  "type NodeResponse = {",
  '  status: "waiting" | "invalid" | "failure" | "retrying" | "success" | "aborted" | "aborting" | "skipped" | "async_wait" | "approval_wait" | "unknown";',
  "  error?: { code: number; message: string };",
  "  retries?: { attempts: number; maxAttempts: number; timestamp: number; nextAttempt?: number; initialCheckTime?: number };",
  "  startTime?: number;",
  "  endTime?: number;",
  "  diff?: object;",
  "  data?: unknown;",
  "};",
  "type RunNode = Node & { response?: NodeResponse };",
  "type Answer<T> = { data: T };",
  "type ErrorAnswer = { error: ApiCallError };",
];

// The generated file, and where each checked value starts in it, to name the
// value in tsc's errors.
const out = { lines: [], count: 0, starts: [] };
function emit(label, ...text) {
  if (label) out.starts.push({ line: out.count + 1, label });
  for (const chunk of text) {
    out.lines.push(chunk);
    out.count += chunk.split("\n").length;
  }
}
const identifier = (text) => text.replace(/[^A-Za-z0-9_]/g, "_");
let serial = 0;

// Every node under `root`, each as a typed constant; a workflow's steps are
// nodes of their own. Returns how many nodes there are.
function emitNodes(root, where, nodeType) {
  let count = 0;
  const walk = (node, path) => {
    if (node === null || typeof node !== "object" || typeof node.kind !== "string") {
      fail(`${where}${path} is not a template node (an object with a \`kind\`)`);
    }
    if (!(node.kind in specTypes)) {
      fail(`${where}${path}: no request type is known for node kind \`${node.kind}\`; add it to typecheck.mjs`);
    }
    const { spec, ...rest } = node;
    const own = node.kind === "Workflow" ? { ...spec, steps: [] } : spec;
    const name = identifier(`node_${serial++}_${node.kind}_${node.ref ?? ""}`);
    emit(
      `${node.kind} node at ${where}${path}${node.ref ? ` (ref ${node.ref})` : ""}`,
      "",
      `export const ${name}: ${nodeType} = ${JSON.stringify({ ...rest, spec: {} })};`,
      `export const ${name}_spec: ${specTypes[node.kind]} = ${JSON.stringify(own, null, 2)};`,
    );
    count++;
    if (node.kind === "Workflow") {
      (spec?.steps ?? []).forEach((step, i) => walk(step, `${path}.spec.steps[${i}]`));
    }
  };
  walk(root, "spec");
  return count;
}

function emitTemplate(template, path) {
  const { spec, ...header } = template;
  emit(
    `the template ${path}`,
    "",
    "// The template itself (its `spec` is typed `any` by the client).",
    `export const template: CreateTemplateRequest["data"] = ${JSON.stringify({ ...header, spec: {} }, null, 2)};`,
  );
  return emitNodes(spec, "", "Node");
}

// One canned answer of the stand-in; `template` supplies the content fields of
// template answers, as the stand-in does.
function emitAnswer(file, body, template) {
  const label = basename(file);
  const name = identifier(`answer_${serial++}_${label}`);
  if (label.startsWith("error.")) {
    emit(`answer ${label}`, "", `export const ${name}: ErrorAnswer = ${JSON.stringify(body, null, 2)};`);
    return;
  }
  const endpoint = endpoints[label.split(".")[0]];
  if (!endpoint) {
    fail(`${file}: unknown endpoint; name answers <endpoint>[.<case>].json with an endpoint of ${Object.keys(endpoints).join(", ")}, or error.<case>.json`);
  }
  const data = structuredClone(body?.data);
  if (endpoint.stored) {
    const stored = endpoint.stored(data);
    const own = CONTENT.filter((key) => stored && key in stored);
    if (own.length > 0) {
      fail(`${file}: ${own.join(", ")} come from the template the stand-in holds; remove them from the file`);
    }
    if (stored) CONTENT.forEach((key) => key in template && (stored[key] = template[key]));
  }
  const runSpec = endpoint.run ? data?.spec : undefined;
  if (endpoint.run && data) data.spec = {};
  emit(`answer ${label}`, "", `export const ${name}: Answer<${endpoint.type}> = ${JSON.stringify({ ...body, data }, null, 2)};`);
  if (runSpec !== undefined) emitNodes(runSpec, `${label}: `, "RunNode");
}

function generate(options) {
  const template = readJson(options.template, "the template");
  if (!existsSync(options.responses)) fail(`no stand-in answers at ${options.responses}`);
  const files = readdirSync(options.responses).filter((f) => f.endsWith(".json")).sort();
  emit(
    null,
    `// Generated by tools/northflank-types/typecheck.mjs from ${options.template} and ${options.responses}; do not edit.`,
    "import type {",
    "  AbortTemplaterunResult,",
    "  ApiCallError,",
    "  CreateAddonRequest,",
    "  CreateJobCronRequest,",
    "  CreateJobManualRequest,",
    "  CreateProjectRequest,",
    "  CreateSecretRequest,",
    "  CreateServiceDeploymentRequest,",
    "  CreateTemplateRequest,",
    "  CreateTemplateResult,",
    "  GetTemplateResult,",
    "  GetTemplaterunResult,",
    "  RunTemplateResult,",
    "  StartJobRunRequest,",
    "  UpdateTemplateResult,",
    '} from "@northflank/js-client";',
    "",
    ...declarations,
  );
  const nodes = emitTemplate(template, options.template);
  for (const file of files) {
    emitAnswer(join(options.responses, file), readJson(join(options.responses, file), "the answer"), template);
  }
  return { nodes, answers: files.length };
}

function typecheck(options) {
  mkdirSync(join(here, "generated"), { recursive: true });
  const work = mkdtempSync(join(here, "generated", "run-"));
  writeFileSync(join(work, "check.ts"), out.lines.join("\n") + "\n");
  writeFileSync(join(work, "tsconfig.json"), JSON.stringify({ extends: "../../tsconfig.json", include: ["check.ts"] }));
  const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
  const result = spawnSync(process.execPath, [tsc, "--noEmit", "--pretty", "false", "-p", join(work, "tsconfig.json")], {
    encoding: "utf8",
  });
  rmSync(work, { recursive: true, force: true });
  if (result.error) fail(`cannot run tsc: ${result.error.message}`);
  for (const line of `${result.stdout}${result.stderr}`.split("\n").filter(Boolean)) {
    const at = /check\.ts\((\d+),\d+\)/.exec(line);
    const owner = at && out.starts.filter((s) => s.line <= Number(at[1])).pop();
    console.error(owner ? `${owner.label}: ${line}` : line);
  }
  return result.status === 0;
}

if (!existsSync(join(here, "node_modules/@northflank/js-client"))) {
  fail(`node_modules is missing in ${here}: run \`npm ci\` there first`);
}
const options = parseArguments(process.argv.slice(2));
const { nodes, answers } = generate(options);
if (!typecheck(options)) {
  fail(`${options.template} or the stand-in's answers in ${options.responses} do not fit the types of @northflank/js-client (see the errors above)`);
}
console.log(`northflank-types: ${nodes} nodes of ${options.template} and ${answers} answers in ${options.responses} fit @northflank/js-client`);
