// The Ollama API beside the DeepSeek one, on the same port and the same engine, for the desktop
// clients that speak it: POST /api/chat and /api/generate (NDJSON streams by default, one JSON
// object with "stream": false), GET /api/tags, /api/ps and /api/version, POST /api/show.
//
// A request is translated into the DeepSeek request it means and goes through the same
// validation, chat template, engine submission, reasoning split, stop strings, JSON-object
// constraint and tool-call parsing; only the shapes differ:
//   - model names: as listed ("tiny"), also with Ollama's default tag ("tiny:latest"); an
//     unknown one is 404 `model "x" not found`;
//   - think: a reasoner thinks unless think is false, and its thinking is returned in
//     `thinking`, apart from the content; think true on a chat-mode model is 400, as Ollama
//     answers for a model without thinking (a template that always opens <think>, R1's, still
//     thinks: that thinking is returned too, unless think is false);
//   - options: temperature, top_p, top_k, min_p, seed (negative: random), num_predict (-1: the
//     model's default, -2: its limit, larger values are capped there), stop, repeat_penalty,
//     presence_penalty, frequency_penalty; num_ctx and the runner options (num_thread, num_gpu,
//     ...) are accepted and left to the server's own settings (--ctx);
//   - format "json": one JSON object (json_constraint.h); JSON schemas are refused (400), since
//     the constraint cannot hold a schema;
//   - images: 400, the model reads text only;
//   - errors are {"error": "..."} (400 for any invalid field, 404, 413, 503 when busy);
//   - durations are nanoseconds from the engine's own timings: load_duration is the wait for a
//     slot, prompt_eval_duration the prefill, eval_duration the decode.
#pragma once

namespace seek::serve {

struct ServerState;

// Registers the /api/* routes on the state's HTTP server.
void add_ollama_routes(ServerState& s);

}  // namespace seek::serve
