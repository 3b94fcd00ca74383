// A real tokenizer small enough for the tiny fixtures: DeepSeek-V3's own tokenizer cut to its first
// `vocabSize` ids. V3's vocabulary is the trace of its BPE training (ids 0-2 special, 3-258 the 256
// byte symbols, id 259 + r the result of merge r), so keeping the ids below vocabSize and the
// merges whose result is among them is a complete byte-level BPE with V3's pre-tokenizer, on which
// Seek's tokenizer and llama.cpp's must still agree.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { root } from "./server.js";

const v3 = join(root, "tests", "fixtures", "tokenizer", "deepseek-v3");

export function writePrefixTokenizer(dir, vocabSize) {
  const t = JSON.parse(readFileSync(join(v3, "tokenizer.json"), "utf8"));
  const vocab = Object.fromEntries(Object.entries(t.model.vocab).filter(([, id]) => id < vocabSize));
  const merges = t.model.merges.filter((m) => {
    const [a, b] = typeof m === "string" ? m.split(" ") : m;
    return Object.hasOwn(vocab, a + b);  // its parts have smaller ids (merge order), so they are kept too
  });
  t.model.vocab = vocab;
  t.model.merges = merges;
  t.added_tokens = t.added_tokens.filter((a) => a.id < vocabSize);
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(t));
  const cfg = JSON.parse(readFileSync(join(v3, "tokenizer_config.json"), "utf8"));
  delete cfg.chat_template;  // it names special tokens past the cut
  cfg.added_tokens_decoder = Object.fromEntries(
    Object.entries(cfg.added_tokens_decoder ?? {}).filter(([id]) => Number(id) < vocabSize));
  writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify(cfg));
}
