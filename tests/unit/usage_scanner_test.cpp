// usage::Scanner (lib/llmproxy/usage/scanner.hpp): token usage and model read incrementally from real response
// shapes. Every document is fed whole, cut at every byte position, and one byte at a time: the result must be
// the same for all chunkings.
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <string_view>

#include "llmproxy/usage/scanner.hpp"

namespace {

using llmproxy::usage::Format;
using llmproxy::usage::Scanner;
using llmproxy::usage::Usage;

struct Result {
  Usage usage;
  std::string model;
};

bool same(const Result& a, const Result& b) {
  return a.usage.present == b.usage.present && a.usage.prompt_tokens == b.usage.prompt_tokens &&
         a.usage.completion_tokens == b.usage.completion_tokens && a.usage.total_tokens == b.usage.total_tokens &&
         a.model == b.model;
}

Result read(const Scanner& s) { return {s.usage(), s.model()}; }

/// Scans `doc` whole, then checks every two-piece split, a three-piece split at every pair of nearby cuts, and
/// byte-at-a-time feeding all give the same result; returns it.
Result scan(Format format, std::string_view doc) {
  Scanner whole(format);
  whole.feed(doc);
  const Result expected = read(whole);
  for (std::size_t cut = 0; cut <= doc.size(); ++cut) {
    Scanner s(format);
    s.feed(doc.substr(0, cut));
    s.feed(doc.substr(cut));
    INFO("cut at " << cut);
    REQUIRE(same(read(s), expected));
  }
  Scanner bytes(format);
  for (char c : doc) bytes.feed(std::string_view(&c, 1));
  REQUIRE(same(read(bytes), expected));
  return expected;
}

Result json(std::string_view doc) { return scan(Format::json, doc); }
Result sse(std::string_view doc) { return scan(Format::sse, doc); }

void check_usage(const Result& r, std::int64_t prompt, std::int64_t completion, std::int64_t total) {
  CHECK(r.usage.present);
  CHECK(r.usage.prompt_tokens == prompt);
  CHECK(r.usage.completion_tokens == completion);
  CHECK(r.usage.total_tokens == total);
}

constexpr std::string_view kChatCompletion = R"({
  "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
  "object": "chat.completion",
  "created": 1741570283,
  "model": "gpt-4o-2024-08-06",
  "choices": [
    {
      "index": 0,
      "message": {
        "role": "assistant",
        "content": "The image shows a wooden boardwalk path running through a lush green field or meadow. \"usage\": {\"prompt_tokens\": 999} \\",
        "refusal": null,
        "annotations": []
      },
      "logprobs": null,
      "finish_reason": "stop"
    }
  ],
  "usage": {
    "prompt_tokens": 1117,
    "completion_tokens": 46,
    "total_tokens": 1163,
    "prompt_tokens_details": {
      "cached_tokens": 0,
      "audio_tokens": 0
    },
    "completion_tokens_details": {
      "reasoning_tokens": 0,
      "audio_tokens": 0,
      "accepted_prediction_tokens": 0,
      "rejected_prediction_tokens": 0
    }
  },
  "service_tier": "default",
  "system_fingerprint": "fp_fc9f1d7035"
}
)";

}  // namespace

TEST_CASE("usage scanner reads a chat completion's usage and model, not the usage text inside the content") {
  const Result r = json(kChatCompletion);
  check_usage(r, 1117, 46, 1163);
  CHECK(r.model == "gpt-4o-2024-08-06");
}

TEST_CASE("usage scanner reads legacy completions and embeddings responses") {
  const Result completion = json(
      R"({"id":"cmpl-uqkvlQyYK7bGYrRHQ0eXlWi7","object":"text_completion","created":1589478378,)"
      R"("model":"gpt-3.5-turbo-instruct","system_fingerprint":"fp_44709d6fcb","choices":[{"text":"\n\nThis is )"
      R"(indeed a test","index":0,"logprobs":null,"finish_reason":"length"}],)"
      R"("usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}})");
  check_usage(completion, 5, 7, 12);
  CHECK(completion.model == "gpt-3.5-turbo-instruct");

  // Embeddings: no completion_tokens.
  const Result embeddings = json(
      R"({"object":"list","data":[{"object":"embedding","embedding":[0.0023064255,-0.009327292,-0.0028842222],)"
      R"("index":0}],"model":"text-embedding-3-small","usage":{"prompt_tokens":8,"total_tokens":8}})");
  check_usage(embeddings, 8, 0, 8);
  CHECK(embeddings.model == "text-embedding-3-small");
}

TEST_CASE("usage scanner maps the Responses API's input and output tokens") {
  const Result r = json(
      R"({"id":"resp_67ccd2bed1ec8190b14f964abc054267","object":"response","created_at":1741476542,)"
      R"("status":"completed","error":null,"model":"gpt-4.1-2025-04-14","output":[{"type":"message",)"
      R"("id":"msg_67ccd2bf17f0819081ff3bb2cf6508e6","status":"completed","role":"assistant","content":[{)"
      R"("type":"output_text","text":"In a peaceful grove beneath a silver moon...","annotations":[]}]}],)"
      R"("usage":{"input_tokens":36,"input_tokens_details":{"cached_tokens":0},"output_tokens":87,)"
      R"("output_tokens_details":{"reasoning_tokens":0},"total_tokens":123},"user":null,"metadata":{}})");
  check_usage(r, 36, 87, 123);
  CHECK(r.model == "gpt-4.1-2025-04-14");

  // Without total_tokens, total is prompt + completion.
  check_usage(json(R"({"usage":{"input_tokens":10,"output_tokens":5}})"), 10, 5, 15);
}

TEST_CASE("usage scanner reads a streamed chat completion with include_usage, in LF and CRLF framing") {
  const std::string stream =
      "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1694268190,"
      "\"model\":\"gpt-4o-mini\",\"system_fingerprint\":\"fp_44709d6fcb\",\"choices\":[{\"index\":0,\"delta\":"
      "{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n"
      "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1694268190,"
      "\"model\":\"gpt-4o-mini-other\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\\n\\n\"},"
      "\"finish_reason\":null}],\"usage\":null}\n\n"
      "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1694268190,"
      "\"model\":\"gpt-4o-mini\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,"
      "\"total_tokens\":11}}\n\n"
      "data: [DONE]\n\n";
  const Result lf = sse(stream);
  check_usage(lf, 9, 2, 11);
  CHECK(lf.model == "gpt-4o-mini");  // the first event's

  std::string crlf;
  for (char c : stream) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
  const Result r = sse(crlf);
  check_usage(r, 9, 2, 11);
  CHECK(r.model == "gpt-4o-mini");

  std::string cr;
  for (char c : stream) cr += c == '\n' ? '\r' : c;
  check_usage(sse(cr), 9, 2, 11);
}

TEST_CASE("usage scanner keeps the last non-null usage of a stream, and none when no event has one") {
  const Result none = sse(
      "data: {\"model\":\"gpt-4o\",\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n"
      "data: {\"model\":\"gpt-4o\",\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
      "data: [DONE]\n\n");
  CHECK_FALSE(none.usage.present);
  CHECK(none.usage.total_tokens == 0);
  CHECK(none.model == "gpt-4o");

  // A null usage after a real one does not erase it.
  const Result kept = sse(
      "data: {\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}\n\n"
      "data: {\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}\n\n"
      "data: {\"usage\":null}\n\n");
  check_usage(kept, 3, 4, 7);
}

TEST_CASE("usage scanner reads the Responses API stream's response.completed event") {
  const Result r = sse(
      "event: response.created\n"
      "data: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_1\","
      "\"object\":\"response\",\"status\":\"in_progress\",\"model\":\"gpt-4.1-2025-04-14\",\"output\":[],"
      "\"usage\":null}}\n\n"
      "event: response.output_text.delta\n"
      "data: {\"type\":\"response.output_text.delta\",\"item_id\":\"msg_1\",\"output_index\":0,"
      "\"content_index\":0,\"delta\":\"Hi\"}\n\n"
      "event: response.completed\n"
      "data: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_1\",\"model\":\"gpt-4.1-2025-04-14\","
      "\"output\":[{\"type\":\"message\",\"content\":[{\"type\":\"output_text\",\"text\":\"Hi\"}]}],"
      "\"usage\":{\"input_tokens\":37,\"output_tokens\":11,\"output_tokens_details\":{\"reasoning_tokens\":0},"
      "\"total_tokens\":48}}}\n\n");
  check_usage(r, 37, 11, 48);
  CHECK(r.model == "gpt-4.1-2025-04-14");
}

TEST_CASE("usage scanner reads Azure-shaped bodies and usage written before the model") {
  const Result azure = json(
      R"({"choices":[{"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}},)"
      R"("finish_reason":"stop","index":0,"message":{"content":"Hello!","role":"assistant"}}],)"
      R"("created":1724000000,"id":"chatcmpl-9x","model":"gpt-4o-2024-05-13","object":"chat.completion",)"
      R"("prompt_filter_results":[{"prompt_index":0,"content_filter_results":{"usage":{"prompt_tokens":1}}}],)"
      R"("system_fingerprint":"fp_abc","usage":{"completion_tokens":10,"prompt_tokens":20,"total_tokens":30}})");
  check_usage(azure, 20, 10, 30);
  CHECK(azure.model == "gpt-4o-2024-05-13");

  const Result before = json(R"({"usage":{"prompt_tokens":2,"completion_tokens":3,"total_tokens":5},"model":"m-1"})");
  check_usage(before, 2, 3, 5);
  CHECK(before.model == "m-1");
}

TEST_CASE("usage scanner takes no usage or model nested deeper than the top level or response") {
  const Result r = json(
      R"({"choices":[{"usage":{"prompt_tokens":5},"model":"inner"}],"metadata":{"usage":{"total_tokens":9}},)"
      R"("response":{"output":{"usage":{"prompt_tokens":7}}},"data":[{"response":{"usage":{"prompt_tokens":8}}}]})");
  CHECK_FALSE(r.usage.present);
  CHECK(r.model.empty());

  // Brackets and quotes inside strings of a skipped value do not end it early.
  const Result text = json(R"({"choices":[{"text":"}]} \"x\":1, \"usage\":{\"prompt_tokens\":5}, [[{"}],)"
                           R"("model":"m","usage":{"prompt_tokens":1}})");
  check_usage(text, 1, 0, 1);
  CHECK(text.model == "m");
  CHECK_FALSE(json(R"({"choices":[{"text":"}]}, \"usage\":{\"prompt_tokens\":5}}"}]})").usage.present);

  // Long skipped values (passed 16 bytes at a time): every bracket counts wherever it falls in a block.
  const Result deep = json(
      R"({"choices":[[[],{}],[{"a":[1,2,{"b":{}}]},true, false , null,[[[[[[[[]]]]]]]]],"]}[{",[0,1,2,3,4,5,6,7,8,9]],)"
      R"("x":{"y":{"z":[{},{},{},{},{},{},{},{},{"usage":{"prompt_tokens":9}}]},"w":"{{{{{{{{{{{{{{{{"},)"
      R"("usage":{"prompt_tokens":4,"completion_tokens":2},"model":"m"})");
  check_usage(deep, 4, 2, 6);
  CHECK(deep.model == "m");

  // A usage inside "response" is taken, but the top-level one wins, whichever comes first.
  check_usage(json(R"({"usage":{"prompt_tokens":1,"completion_tokens":1},"response":{"usage":{"prompt_tokens":4}}})"),
              1, 1, 2);
  check_usage(json(R"({"response":{"usage":{"prompt_tokens":4}},"usage":{"prompt_tokens":1,"completion_tokens":1}})"),
              1, 1, 2);
}

TEST_CASE("usage scanner skips escapes in strings and decodes only plain escapes in the model") {
  const Result r = json(
      R"({"a":"\"usage\": {\"prompt_tokens\": 1}","b\"usage":{"prompt_tokens":2},"c":"\\","d":"\u0022usage\u0022",)"
      R"("model":"org\/model \"x\"","usage":{"prompt_tokens":3,"completion_tokens":0}})");
  check_usage(r, 3, 0, 3);
  CHECK(r.model == R"(org/model "x")");

  // Other escapes, a raw control byte or a name past 256 bytes: the model is unknown, the usage still read.
  CHECK(json(R"({"model":"a\u0041b","usage":{"prompt_tokens":1}})").model.empty());
  CHECK(json(R"({"model":"a\nb"})").model.empty());
  CHECK(json("{\"model\":\"a\tb\"}").model.empty());
  CHECK(json("{\"model\":\"" + std::string(257, 'm') + "\"}").model.empty());
  CHECK(json("{\"model\":\"" + std::string(256, 'm') + "\"}").model == std::string(256, 'm'));
  // Only well-formed UTF-8 is kept: a model name goes into PostgreSQL rows and metric labels.
  CHECK(json("{\"model\":\"gpt-\xC3\xA9\"}").model == "gpt-\xC3\xA9");
  CHECK(json("{\"model\":\"gpt-\xC3\"}").model.empty());
  CHECK(json("{\"model\":\"gpt-\xED\xA0\x80\"}").model.empty());  // a surrogate
  CHECK(json("{\"model\":\"\xFF\"}").model.empty());
  // An escaped key is not recognised.
  CHECK_FALSE(json(R"({"\u0075sage":{"prompt_tokens":1}})").usage.present);
}

TEST_CASE("usage scanner ignores counters that are not non-negative integers of at most 10^12") {
  const Result r = json(
      R"({"usage":{"prompt_tokens":-5,"completion_tokens":1.5,"total_tokens":"12","input_tokens":1e3,)"
      R"("output_tokens":99999999999999999999}})");
  CHECK_FALSE(r.usage.present);
  static_assert(llmproxy::usage::kMaxCount == 1'000'000'000'000);
  check_usage(json(R"({"usage":{"prompt_tokens":1000000000000,"completion_tokens":1000000000001}})"), 1000000000000,
              0, 1000000000000);
  check_usage(json(R"({"usage":{"prompt_tokens":9223372036854775807,"completion_tokens":7}})"), 0, 7, 7);
  CHECK_FALSE(json(R"({"usage":null,"model":"m"})").usage.present);
  CHECK_FALSE(json(R"({"usage":{}})").usage.present);
  CHECK_FALSE(json(R"({"usage":{"prompt_tokens_details":{"cached_tokens":3}}})").usage.present);
}

TEST_CASE("usage scanner joins multi-line SSE data and reads data fields with or without the space") {
  const std::string stream =
      ": keep-alive comment\n"
      "id: 1\n"
      "data:{\"model\":\n"
      "data: \"gpt-4o\",\n"
      "data:  \"usage\": {\"prompt_tokens\": 4,\n"
      "data: \"completion_tokens\": 6}}\n"
      "retry: 100\n"
      "\n"
      "dat: {\"usage\":{\"prompt_tokens\":100}}\n"
      "datax: {\"usage\":{\"prompt_tokens\":100}}\n"
      "data\n"
      "\n";
  const Result r = sse(stream);
  check_usage(r, 4, 6, 10);
  CHECK(r.model == "gpt-4o");

  // The same with CRLF line ends: the LF of a CRLF is not an empty line ending the event early.
  std::string crlf;
  for (char c : stream) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
  const Result r2 = sse(crlf);
  check_usage(r2, 4, 6, 10);
  CHECK(r2.model == "gpt-4o");
}

TEST_CASE("usage scanner keeps what was complete before garbage or truncation and never fails") {
  // Truncated inside usage: the usage object never closed, so it is not taken; the model before it is.
  const Result cut = json(R"({"model":"gpt-4o","usage":{"prompt_tokens":12,"completion_tok)");
  CHECK_FALSE(cut.usage.present);
  CHECK(cut.model == "gpt-4o");

  // Garbage after a complete usage keeps it; bytes after the top-level value are ignored.
  const Result after = json(R"({"usage":{"prompt_tokens":1,"completion_tokens":2}} garbage {"usage":{"prompt_tokens":9}})");
  check_usage(after, 1, 2, 3);
  check_usage(json(R"({"usage":{"prompt_tokens":1,"completion_tokens":2}, oops "model":"m"})"), 1, 2, 3);

  // Not an object at the top, or nothing at all.
  CHECK_FALSE(json(R"([{"usage":{"prompt_tokens":1}}])").usage.present);
  CHECK_FALSE(json("").usage.present);
  CHECK_FALSE(json("\xff\xfe\x00garbage").usage.present);
  CHECK_FALSE(json(R"({"usage":{"prompt_tokens":1 2}})").usage.present);

  // A broken event does not poison the next one.
  const Result stream = sse(
      "data: {\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":\n\n"
      "data: {\"model\":\"m\",\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":2}}\n\n"
      "data: {\"usage\":{\"prompt_tokens\":\n");
  check_usage(stream, 2, 2, 4);
  CHECK(stream.model == "m");
}

TEST_CASE("usage scanner in model_only mode stops at the top-level model (an answer from the response cache)") {
  using llmproxy::usage::Read;
  const auto only_model = [](Format format, std::string_view doc) {
    Scanner whole(format, Read::model_only);
    whole.feed(doc);
    Scanner bytes(format, Read::model_only);
    for (char c : doc) bytes.feed(std::string_view(&c, 1));
    CHECK(same(read(bytes), read(whole)));
    return read(whole);
  };
  // OpenAI sends the model before the choices and the usage: nothing after it is read.
  const Result plain = only_model(
      Format::json, R"({"id":"x","model":"gpt-4o","choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":5}})");
  CHECK(plain.model == "gpt-4o");
  CHECK_FALSE(plain.usage.present);
  // A model after other keys, nested values included, is still found; a response.model does not stop it.
  CHECK(only_model(Format::json, R"({"choices":[{"model":"no"}],"response":{"model":"inner"},"model":"top"})").model ==
        "top");
  // A stream: the first event's model; later events are not read.
  const Result stream = only_model(Format::sse,
                                   "data: {\"model\":\"m1\",\"choices\":[]}\n\n"
                                   "data: {\"model\":\"m2\",\"usage\":{\"prompt_tokens\":3}}\n\n");
  CHECK(stream.model == "m1");
  CHECK_FALSE(stream.usage.present);
}
