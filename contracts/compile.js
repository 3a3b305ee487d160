// Compile TestToken.sol with the npm `solc` package; writes TestToken.json (ABI + bytecode).
// Usage: NODE_PATH=<dir with node_modules> node contracts/compile.js  (see contracts/README.md)
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const source = fs.readFileSync(path.join(__dirname, "TestToken.sol"), "utf8");
const input = {
  language: "Solidity",
  sources: { "TestToken.sol": { content: source } },
  settings: {
    evmVersion: "cancun",
    optimizer: { enabled: true, runs: 200 },
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
  },
};
const output = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (output.errors || []).filter((e) => e.severity === "error");
if (errors.length) {
  for (const e of errors) console.error(e.formattedMessage);
  process.exit(1);
}
const contract = output.contracts["TestToken.sol"].TestToken;
const artifact = {
  contractName: "TestToken",
  compiler: `solc ${solc.version()}`,
  evmVersion: "cancun",
  abi: contract.abi,
  bytecode: "0x" + contract.evm.bytecode.object,
};
fs.writeFileSync(path.join(__dirname, "TestToken.json"), JSON.stringify(artifact, null, 2) + "\n");
console.log(`wrote TestToken.json with ${artifact.compiler}`);
