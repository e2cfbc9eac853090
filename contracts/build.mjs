// Compile the Solidity sources with the pinned solcjs and write one JSON
// artifact per deployable contract.
//
//   node build.mjs          compile and (re)write the artifacts
//   node build.mjs --check  compile in memory; exit 1 if any artifact on disk
//                           is missing or differs from what would be written
//
// Artifacts are committed so the Python package never needs a Solidity
// toolchain; --check lets CI prove they match the sources. Output is
// byte-deterministic: sorted keys, 2-space indent, trailing newline, and
// source unit names relative to this directory (they end up in the metadata
// hash embedded in the bytecode).

import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const solc = require("solc");

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, "..");
const NODE_MODULES = path.join(HERE, "node_modules");

// Guard against a stray solc: the artifacts are only reproducible with this one.
const EXPECTED_SOLC = "0.8.24";

const SOURCE_DIRS = ["src", "test"];

// contract name -> [source unit, artifact directory relative to the repo root]
const RUNTIME_DIR = "src/warden/chain/artifacts";
const TEST_DIR = "tests/contracts/artifacts";
const ARTIFACTS = {
  DstackApp: ["src/DstackApp.sol", RUNTIME_DIR],
  DstackKms: ["src/DstackKms.sol", RUNTIME_DIR],
  ERC1967Proxy: ["@openzeppelin/contracts/proxy/ERC1967/ERC1967Proxy.sol", RUNTIME_DIR],
  Multicall: ["src/Multicall.sol", RUNTIME_DIR],
  DstackAppNext: ["test/DstackAppNext.sol", TEST_DIR],
  DstackKmsNext: ["test/DstackKmsNext.sol", TEST_DIR],
};

function out(fd, text) {
  // writeSync so large output is not truncated when process.exit follows.
  fs.writeSync(fd, text.endsWith("\n") ? text : text + "\n");
}

function fail(message) {
  out(2, `build.mjs: ${message}`);
  process.exit(1);
}

function collectSources() {
  const sources = {};
  for (const dir of SOURCE_DIRS) {
    const abs = path.join(HERE, dir);
    if (!fs.existsSync(abs)) continue;
    for (const name of fs.readdirSync(abs).sort()) {
      if (!name.endsWith(".sol")) continue;
      const unit = `${dir}/${name}`;
      sources[unit] = { content: fs.readFileSync(path.join(abs, name), "utf8") };
    }
  }
  return sources;
}

// Resolve imports that are not among the project sources: npm packages first,
// then paths relative to this directory. Nothing outside those roots is read.
function findImport(unit) {
  for (const root of [NODE_MODULES, HERE]) {
    const abs = path.resolve(root, unit);
    if (!abs.startsWith(root + path.sep)) continue;
    if (fs.existsSync(abs)) return { contents: fs.readFileSync(abs, "utf8") };
  }
  return { error: `import not found: ${unit} (run "npm ci" in contracts/)` };
}

function compile() {
  const fullVersion = solc.version();
  const match = /^(\d+\.\d+\.\d+)\+commit\.[0-9a-f]+/.exec(fullVersion);
  if (!match || match[1] !== EXPECTED_SOLC) {
    fail(`expected solc ${EXPECTED_SOLC}, got ${fullVersion}`);
  }
  const input = {
    language: "Solidity",
    sources: collectSources(),
    settings: {
      optimizer: { enabled: true, runs: 200 },
      evmVersion: "cancun",
      outputSelection: {
        "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] },
      },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImport }));

  const diagnostics = output.errors || [];
  const errors = diagnostics.filter((d) => d.severity === "error");
  for (const d of diagnostics.filter((d) => d.severity !== "error")) {
    out(2, d.formattedMessage || d.message);
  }
  if (errors.length) {
    for (const d of errors) out(2, d.formattedMessage || d.message);
    fail(`compilation failed with ${errors.length} error(s)`);
  }
  return { output, compiler: match[0] };
}

function sortKeys(value) {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === "object") {
    const sorted = {};
    for (const key of Object.keys(value).sort()) sorted[key] = sortKeys(value[key]);
    return sorted;
  }
  return value;
}

function renderArtifacts({ output, compiler }) {
  const rendered = new Map();
  for (const [name, [unit, dir]] of Object.entries(ARTIFACTS)) {
    const contract = output.contracts?.[unit]?.[name];
    if (!contract) fail(`compiler produced no ${name} in ${unit}`);
    const bytecode = contract.evm.bytecode.object;
    const deployed = contract.evm.deployedBytecode.object;
    if (!bytecode || !deployed) fail(`${name} has empty bytecode (abstract or interface?)`);
    const artifact = {
      contractName: name,
      sourceName: unit,
      abi: contract.abi,
      bytecode: `0x${bytecode}`,
      deployedBytecode: `0x${deployed}`,
      compiler,
    };
    const file = path.join(REPO, dir, `${name}.json`);
    rendered.set(file, JSON.stringify(sortKeys(artifact), null, 2) + "\n");
  }
  return rendered;
}

function main(argv) {
  const args = argv.slice(2);
  const unknown = args.filter((a) => a !== "--check");
  if (unknown.length) fail(`unknown argument(s): ${unknown.join(" ")}`);
  const check = args.includes("--check");

  const rendered = renderArtifacts(compile());

  if (check) {
    const problems = [];
    for (const [file, text] of rendered) {
      const rel = path.relative(REPO, file);
      if (!fs.existsSync(file)) problems.push(`missing: ${rel}`);
      else if (fs.readFileSync(file, "utf8") !== text) problems.push(`stale: ${rel}`);
    }
    if (problems.length) {
      out(2, problems.join("\n"));
      fail('artifacts are out of date; run "node build.mjs" in contracts/');
    }
    out(1, `all ${rendered.size} artifacts up to date`);
    return;
  }

  for (const [file, text] of rendered) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const rel = path.relative(REPO, file);
    if (fs.existsSync(file) && fs.readFileSync(file, "utf8") === text) {
      out(1, `unchanged ${rel}`);
    } else {
      fs.writeFileSync(file, text);
      out(1, `wrote     ${rel}`);
    }
  }
}

main(process.argv);
