// Seek against llama.cpp on the same GGUF file, side by side and interleaved in one run (issue 16:
// decode >= 1.5x and 512-token prompt processing >= 2x llama.cpp for Q8_0 and Q4_K).
//   node bench/vs_llamacpp.mjs [--model DIR] [--types q8_0,q4_k,q4_k_m] [--prompt 512] [--gen 32]
//                              [--threads 2] [--rounds 2] [--chunk N]
// --chunk N: prompts in chunks of N tokens on both sides (Seek's chunked prefill, llama.cpp's
// batch size), for long prompts: --prompt 16384 --chunk 512 is the pp16k.
// DIR (default ~/.cache/seek/models/v2-lite-4l-bf16, see the README) gets DeepSeek-V3's tokenizer
// cut to its vocabulary (llama.cpp loads no GGUF without one) in DIR-tok/, and `seek quantize`
// writes DIR-tok.TYPE.gguf once. Per round and type: Seek's figures from `bench_model FILE.gguf`
// (prefill of --prompt random tokens, then --gen greedy decode steps), then llama.cpp's on the
// same file through node-llama-cpp's prebuilt CPU build (tests/e2e/node_modules; run
// `scripts/e2e` or `npm ci` there first): the prompt as one batch, or --chunk batches (evaluateWithoutGeneratingNewTokens),
// then --gen greedy tokens, timed from the first generated token to the last.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const e2e = join(root, "tests", "e2e");
const { writePrefixTokenizer } = await import(pathToFileURL(join(e2e, "lib", "prefix_tokenizer.js")));
const nodeLlamaCpp = join(e2e, "node_modules", "node-llama-cpp", "dist", "index.js");
if (!existsSync(nodeLlamaCpp)) {
  console.error("bench: node-llama-cpp is not installed; run `npm ci` in tests/e2e (or scripts/e2e) first");
  process.exit(1);
}
const { getLlama } = await import(pathToFileURL(nodeLlamaCpp));

const opt = { model: join(homedir(), ".cache", "seek", "models", "v2-lite-4l-bf16"), types: "q8_0,q4_k,q4_k_m",
              prompt: 512, gen: 32, threads: 2, rounds: 2, chunk: 0 };
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i].replace(/^--/, "");
  if (!(k in opt) || i + 1 >= process.argv.length) {
    console.error(`bench: unknown or incomplete option ${process.argv[i]}`);
    process.exit(2);
  }
  opt[k] = typeof opt[k] === "number" ? Number(process.argv[i + 1]) : process.argv[i + 1];
}
const seekBin = join(root, "build", "seek");
const benchModel = join(root, "build", "bench", "bench_model");

// The model with a tokenizer, and its GGUF files.
const tokDir = `${opt.model}-tok`;
if (!existsSync(tokDir)) {
  mkdirSync(tokDir);
  for (const f of readdirSync(opt.model))
    if (f.endsWith(".json") || f.endsWith(".safetensors")) symlinkSync(join(opt.model, f), join(tokDir, f));
  writePrefixTokenizer(tokDir, JSON.parse(readFileSync(join(tokDir, "config.json"), "utf8")).vocab_size);
}
const files = {};
for (const t of opt.types.split(",")) {
  files[t] = `${tokDir}.${t}.gguf`;
  if (!existsSync(files[t])) {
    console.error(`bench: seek quantize ${tokDir} -> ${files[t]}`);
    execFileSync(seekBin, ["quantize", tokDir, files[t], "--type", t], { stdio: "inherit" });
  }
}

function seekRun(file) {
  const out = execFileSync(benchModel, [file, "--threads", String(opt.threads), "--prompt", String(opt.prompt),
                                        "--gen", String(opt.gen), "--reps", "1",
                                        ...(opt.chunk > 0 ? ["--chunk", String(opt.chunk)] : [])]).toString();
  const pp = Number(/^prefill\s+\d+ tokens: ([\d.]+) tok\/s/m.exec(out)?.[1]);
  const tg = Number(/^decode\s+\d+ tokens: ([\d.]+) tok\/s/m.exec(out)?.[1]);
  const bw = Number(/read bandwidth ([\d.]+) GB\/s/.exec(out)?.[1]);
  return { pp, tg, bw };
}

const llama = await getLlama({ gpu: false, build: "never", skipDownload: true, logLevel: "error" });
async function llamaRun(model, vocab) {
  const ctx = await model.createContext({ contextSize: opt.prompt + opt.gen + 8,
                                          batchSize: opt.chunk > 0 ? opt.chunk : opt.prompt,
                                          threads: opt.threads });
  try {
    let x = 12345;
    const prompt = Array.from({ length: opt.prompt }, () => {
      x = (x * 1103515245 + 12345) % 2147483648;
      return 3 + (x % (vocab - 3));
    });
    const seq = ctx.getSequence();
    const t0 = performance.now();
    await seq.evaluateWithoutGeneratingNewTokens(prompt.slice(0, -1));
    const pp = (opt.prompt - 1) / ((performance.now() - t0) / 1000);
    let first = 0, n = 0;
    for await (const _ of seq.evaluate(prompt.slice(-1), { temperature: 0, yieldEogToken: true })) {
      if (n++ === 0) first = performance.now();
      if (n === opt.gen + 1) break;
    }
    const tg = opt.gen / ((performance.now() - first) / 1000);
    return { pp, tg };
  } finally {
    await ctx.dispose();
  }
}

const vocab = JSON.parse(readFileSync(join(tokDir, "config.json"), "utf8")).vocab_size;
const rows = [];
for (const [t, file] of Object.entries(files)) {
  const model = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
  for (let r = 0; r < opt.rounds; ++r) {
    const s = seekRun(file);
    const l = await llamaRun(model, vocab);
    rows.push({ type: t, round: r + 1, s, l });
    console.log(`${t} round ${r + 1}: Seek pp${opt.prompt} ${s.pp.toFixed(1)} tok/s, decode ${s.tg.toFixed(2)} tok/s ` +
                `(bandwidth ${s.bw.toFixed(1)} GB/s) | llama.cpp pp ${l.pp.toFixed(1)}, decode ${l.tg.toFixed(2)} | ` +
                `ratio pp ${(s.pp / l.pp).toFixed(2)}x, decode ${(s.tg / l.tg).toFixed(2)}x`);
  }
  await model.dispose();
}
await llama.dispose();
console.log(`\n| type | Seek pp${opt.prompt} | llama.cpp pp${opt.prompt} | ratio | Seek decode | llama.cpp decode | ratio |`);
console.log("|---|---|---|---|---|---|---|");
for (const { type, round, s, l } of rows)
  console.log(`| ${type} (${round}) | ${s.pp.toFixed(1)} | ${l.pp.toFixed(1)} | ${(s.pp / l.pp).toFixed(2)}x | ` +
              `${s.tg.toFixed(2)} | ${l.tg.toFixed(2)} | ${(s.tg / l.tg).toFixed(2)}x |`);
