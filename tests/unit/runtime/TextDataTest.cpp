//===- TextDataTest.cpp - Tests of corpora, tokenizers and LM batching ----===//
//
// The word tokenizer's expectations were produced by pytorch/examples'
// data.py loop (`for line in f: words = line.split() + ['<eos>']`) under
// Python 3; the batches were computed by hand from batchify/get_batch.
//
//===----------------------------------------------------------------------===//

#include "runtime/TextData.h"
#include "runtime/Npy.h"

#include "TestUtil.h"

using namespace loom;
using namespace loom::test;

namespace {

std::optional<size_t> badUtf8(const std::string &s) {
  return findInvalidUtf8(s);
}

std::vector<std::string> texts(const std::vector<TextToken> &tokens) {
  std::vector<std::string> out;
  for (const TextToken &t : tokens)
    out.push_back(t.text);
  return out;
}

std::vector<size_t> offsets(const std::vector<TextToken> &tokens) {
  std::vector<size_t> out;
  for (const TextToken &t : tokens)
    out.push_back(t.offset);
  return out;
}

void writeText(const std::string &path, const std::string &text) {
  writeBytes(path, toBytes(text));
}

std::string vocabError(const std::string &json) {
  ErrorOr<Vocabulary> v = Vocabulary::fromJson(json, "v.json");
  EXPECT_FALSE(v.ok()) << json;
  return v.ok() ? "" : v.error();
}

//===----------------------------------------------------------------------===//
// UTF-8
//===----------------------------------------------------------------------===//

TEST(TextDataTest, AcceptsWellFormedUtf8) {
  EXPECT_EQ(badUtf8(""), std::nullopt);
  EXPECT_EQ(badUtf8("plain ASCII\n"), std::nullopt);
  // U+0080, U+07FF, U+0800, U+D7FF, U+E000, U+FFFF, U+10000, U+10FFFF.
  EXPECT_EQ(badUtf8("\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80"
                    "\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf"),
            std::nullopt);
  EXPECT_EQ(badUtf8(std::string("a\0b", 3)), std::nullopt);
}

TEST(TextDataTest, FindsTheFirstIllFormedSequence) {
  // Overlong forms.
  EXPECT_EQ(badUtf8("ab\xc0\x80"), 2u);
  EXPECT_EQ(badUtf8("ab\xc1\xbf"), 2u);
  EXPECT_EQ(badUtf8("a\xe0\x80\x80"), 1u);
  EXPECT_EQ(badUtf8("a\xe0\x9f\xbf"), 1u);
  EXPECT_EQ(badUtf8("\xf0\x80\x80\x80"), 0u);
  EXPECT_EQ(badUtf8("\xf0\x8f\xbf\xbf"), 0u);
  // Encoded surrogates U+D800 and U+DFFF.
  EXPECT_EQ(badUtf8("xyz\xed\xa0\x80"), 3u);
  EXPECT_EQ(badUtf8("xyz\xed\xbf\xbf"), 3u);
  // Above U+10FFFF, and lead bytes that never occur.
  EXPECT_EQ(badUtf8("\xf4\x90\x80\x80"), 0u);
  EXPECT_EQ(badUtf8("ok\xf5\x80\x80\x80"), 2u);
  EXPECT_EQ(badUtf8("ok\xff"), 2u);
  // A stray continuation byte after a valid character.
  EXPECT_EQ(badUtf8("\xc3\xa9\x80"), 2u);
  // A sequence interrupted by another character.
  EXPECT_EQ(badUtf8("a\xe2\x82"
                    "b"),
            1u);
  EXPECT_EQ(badUtf8("a\xf0\x9f\x98"
                    "b"),
            1u);
  // Truncated at the end of the text.
  EXPECT_EQ(badUtf8("abc\xe2\x82"), 3u);
  EXPECT_EQ(badUtf8("abc\xf0\x9f\x98"), 3u);
  EXPECT_EQ(badUtf8("abc\xc3"), 3u);
}

TEST(TextDataTest, ReadsCorpora) {
  ScratchDir dir;
  std::string path = dir.path("corpus.txt");
  writeText(path, "caf\xc3\xa9\n");
  ErrorOr<std::string> text = readTextCorpus(path);
  ASSERT_TRUE(text.ok()) << text.error();
  EXPECT_EQ(*text, "caf\xc3\xa9\n");
}

TEST(TextDataTest, CorpusErrors) {
  ScratchDir dir;
  std::string missing = dir.path("missing.txt");
  ErrorOr<std::string> text = readTextCorpus(missing);
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.error(), missing + ": cannot open: No such file or directory");

  std::string empty = dir.path("empty.txt");
  writeText(empty, "");
  text = readTextCorpus(empty);
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.error(), empty + ": the corpus is empty");

  std::string bad = dir.path("bad.txt");
  writeText(bad, "hello\nw\xc3\xb6rld \xed\xa0\x80!\n");
  text = readTextCorpus(bad);
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.error(), bad + ": not valid UTF-8 at byte offset 13");

  writeText(bad, "truncated \xe2\x82");
  text = readTextCorpus(bad);
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.error(), bad + ": not valid UTF-8 at byte offset 10");
}

TEST(TextDataTest, EscapesTextForMessages) {
  EXPECT_EQ(escapeForMessage("plain"), "plain");
  EXPECT_EQ(escapeForMessage("a\nb\rc\td"), "a\\nb\\rc\\td");
  EXPECT_EQ(escapeForMessage("\"q\" \\"), "\\\"q\\\" \\\\");
  EXPECT_EQ(escapeForMessage(std::string("\0\x01\x7f", 3)), "\\x00\\x01\\x7f");
  EXPECT_EQ(escapeForMessage("\xc3\xa9\xe2\x82\xac"), "\xc3\xa9\xe2\x82\xac");
  EXPECT_EQ(escapeForMessage("\xc2\xa0\xc2\x85\xe2\x80\xa8\xef\xbb\xbf"),
            "\\u00a0\\u0085\\u2028\\ufeff");
  EXPECT_EQ(escapeForMessage("x\xff"), "x\\xff");
}

//===----------------------------------------------------------------------===//
// Tokenizers
//===----------------------------------------------------------------------===//

TEST(TextDataTest, TokenizerKinds) {
  EXPECT_TRUE(isTokenizerKind("char"));
  EXPECT_TRUE(isTokenizerKind("word"));
  EXPECT_FALSE(isTokenizerKind("bpe"));
  EXPECT_TRUE(checkTokenizerKind("word").ok());
  Status s = checkTokenizerKind("bpe");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error(), "unknown tokenizer 'bpe' (expected 'char' or 'word')");
  EXPECT_TRUE(tokenize("bpe", "some text").empty());
}

TEST(TextDataTest, CharTokensAreCodePoints) {
  // "aé\n€😀\r\n"
  std::string text = "a\xc3\xa9\n\xe2\x82\xac\xf0\x9f\x98\x80\r\n";
  std::vector<TextToken> tokens = tokenize("char", text);
  EXPECT_EQ(texts(tokens),
            (std::vector<std::string>{"a", "\xc3\xa9", "\n", "\xe2\x82\xac",
                                      "\xf0\x9f\x98\x80", "\r", "\n"}));
  EXPECT_EQ(offsets(tokens), (std::vector<size_t>{0, 1, 3, 4, 7, 11, 12}));
  EXPECT_TRUE(tokenize("char", "").empty());
}

TEST(TextDataTest, WordTokensFollowPytorchExamples) {
  using Words = std::vector<std::string>;
  // Blank lines and runs of spaces and tabs.
  EXPECT_EQ(texts(tokenize("word", "the cat\n\nsat  on\tthe mat\n")),
            (Words{"the", "cat", "<eos>", "<eos>", "sat", "on", "the", "mat",
                   "<eos>"}));
  // A last line without a line end still ends in <eos>.
  EXPECT_EQ(texts(tokenize("word", "a b\nc")),
            (Words{"a", "b", "<eos>", "c", "<eos>"}));
  // Universal newlines: "\r\n" and a lone "\r" end lines too.
  EXPECT_EQ(texts(tokenize("word", "a b\r\nc\rd\n\r\n")),
            (Words{"a", "b", "<eos>", "c", "<eos>", "d", "<eos>", "<eos>"}));
  // Python's whitespace: \v, \f, \x1c, U+00A0, U+2028, U+3000, U+0085 split
  // words but do not end lines; a line of spaces gives just <eos>.
  EXPECT_EQ(
      texts(tokenize("word", "  lead\x0btrail \x0c x\x1cy\xc2\xa0z"
                             "\xe2\x80\xa8w\xe3\x80\x80v\xc2\x85u \n"
                             "   \n")),
      (Words{"lead", "trail", "x", "y", "z", "w", "v", "u", "<eos>", "<eos>"}));
  EXPECT_EQ(texts(tokenize("word", "\n")), (Words{"<eos>"}));
  EXPECT_EQ(texts(tokenize("word", "")), (Words{}));
  // A byte-order mark is not whitespace (data.py opens with "utf8").
  EXPECT_EQ(texts(tokenize("word", "\xef\xbb\xbfhi there")),
            (Words{"\xef\xbb\xbfhi", "there", "<eos>"}));
}

TEST(TextDataTest, WordTokenOffsets) {
  // <eos> sits at the line end, or at the end of an unterminated last line.
  std::vector<TextToken> tokens =
      tokenize("word", " ab  c\r\n\xc3\xa9t\xc3\xa9");
  EXPECT_EQ(texts(tokens),
            (std::vector<std::string>{"ab", "c", "<eos>", "\xc3\xa9t\xc3\xa9",
                                      "<eos>"}));
  EXPECT_EQ(offsets(tokens), (std::vector<size_t>{1, 5, 6, 8, 13}));
}

//===----------------------------------------------------------------------===//
// Vocabularies
//===----------------------------------------------------------------------===//

TEST(TextDataTest, BuildsVocabulariesInFirstSeenOrder) {
  Vocabulary chars = Vocabulary::build("char", "hello\nh\xc3\xa9");
  EXPECT_EQ(chars.kind, "char");
  EXPECT_EQ(chars.tokens,
            (std::vector<std::string>{"h", "e", "l", "o", "\n", "\xc3\xa9"}));
  EXPECT_EQ(chars.size(), 6);
  EXPECT_EQ(chars.index.at("l"), 2);
  EXPECT_EQ(chars.lookup("\n"), 4);
  EXPECT_EQ(chars.lookup("x"), std::nullopt);

  Vocabulary words = Vocabulary::build("word", "the cat\nthe dog\n\n");
  EXPECT_EQ(words.kind, "word");
  EXPECT_EQ(words.tokens,
            (std::vector<std::string>{"the", "cat", "<eos>", "dog"}));
  for (int64_t i = 0; i < words.size(); ++i)
    EXPECT_EQ(words.index.at(words.tokens[i]), i);
}

TEST(TextDataTest, Encodes) {
  Vocabulary words = Vocabulary::build("word", "the cat\nthe dog\n");
  ErrorOr<std::vector<int64_t>> ids = words.encode("dog the\tcat", "prompt");
  ASSERT_TRUE(ids.ok()) << ids.error();
  EXPECT_EQ(*ids, (std::vector<int64_t>{3, 0, 1, 2}));

  Vocabulary chars = Vocabulary::build("char", "ab\n");
  ids = chars.encode("ba\nab", "prompt");
  ASSERT_TRUE(ids.ok()) << ids.error();
  EXPECT_EQ(*ids, (std::vector<int64_t>{1, 0, 2, 0, 1}));
  ids = chars.encode("", "prompt");
  ASSERT_TRUE(ids.ok()) << ids.error();
  EXPECT_TRUE(ids->empty());
}

TEST(TextDataTest, EncodeErrors) {
  Vocabulary chars = Vocabulary::build("char", "ab");
  ErrorOr<std::vector<int64_t>> ids = chars.encode("ab\nb", "--prompt");
  ASSERT_FALSE(ids.ok());
  EXPECT_EQ(ids.error(), "--prompt: token \"\\n\" (at byte offset 2) is not "
                         "in the vocabulary (the vocabulary has 2 tokens)");

  ids = chars.encode("a\xe2\x82", "--prompt");
  ASSERT_FALSE(ids.ok());
  EXPECT_EQ(ids.error(), "--prompt: not valid UTF-8 at byte offset 1");

  Vocabulary words = Vocabulary::build("word", "the cat\n");
  ids = words.encode("the  \"dog\"", "valid.txt");
  ASSERT_FALSE(ids.ok());
  EXPECT_EQ(ids.error(), "valid.txt: token \"\\\"dog\\\"\" (at byte offset 5) "
                         "is not in the vocabulary (the vocabulary has 3 "
                         "tokens)");
}

TEST(TextDataTest, VocabularyJsonRoundTrip) {
  Vocabulary v = Vocabulary::build("char", "a\"\\\n\t\x01\xc3\xa9");
  std::string json = v.toJson();
  EXPECT_EQ(json, "{\"kind\": \"char\", \"tokens\": [\"a\", \"\\\"\", "
                  "\"\\\\\", \"\\n\", \"\\t\", \"\\u0001\", \"\xc3\xa9\"]}\n");
  ErrorOr<Vocabulary> back = Vocabulary::fromJson(json, "v.json");
  ASSERT_TRUE(back.ok()) << back.error();
  EXPECT_EQ(back->kind, v.kind);
  EXPECT_EQ(back->tokens, v.tokens);
  EXPECT_EQ(back->index, v.index);

  ScratchDir dir;
  Vocabulary words = Vocabulary::build("word", "x y\nz x\n");
  std::string path = dir.path("model.vocab.json");
  Status s = words.save(path);
  ASSERT_TRUE(s.ok()) << s.error();
  EXPECT_EQ(dir.list(), (std::vector<std::string>{"model.vocab.json"}));
  ErrorOr<Vocabulary> loaded = Vocabulary::load(path);
  ASSERT_TRUE(loaded.ok()) << loaded.error();
  EXPECT_EQ(loaded->kind, "word");
  EXPECT_EQ(loaded->tokens, words.tokens);
  EXPECT_EQ(loaded->index, words.index);
}

TEST(TextDataTest, LoadsTheLegacyCharlmVocabulary) {
  // examples/charlm/vocab.json: json.dump of a list of characters (with
  // ensure_ascii, so non-ASCII characters come as \u escapes).
  ScratchDir dir;
  std::string path = dir.path("vocab.json");
  writeText(path, "[\"\\n\", \" \", \"A\", \"\\u00e9\", \"\\ud83d\\ude00\"]");
  ErrorOr<Vocabulary> v = Vocabulary::load(path);
  ASSERT_TRUE(v.ok()) << v.error();
  EXPECT_EQ(v->kind, "char");
  EXPECT_EQ(v->tokens, (std::vector<std::string>{"\n", " ", "A", "\xc3\xa9",
                                                 "\xf0\x9f\x98\x80"}));
  EXPECT_EQ(v->index.at("\xc3\xa9"), 3);
}

TEST(TextDataTest, VocabularyErrors) {
  EXPECT_EQ(vocabError("{\"kind\": \"char\""),
            "v.json: expected ',' or '}' in JSON object, found end of input "
            "at offset 15");
  EXPECT_EQ(vocabError("\"abc\""),
            "v.json: expected a vocabulary object {\"kind\": ..., \"tokens\": "
            "[...]} or an array of strings at offset 0");
  EXPECT_EQ(vocabError("{\"kind\": \"char\", \"tokens\": [\"a\"], \"x\": 1}"),
            "v.json: unknown key \"x\" (expected \"kind\" and \"tokens\") at "
            "offset 34");
  EXPECT_EQ(vocabError("{\"kind\": \"char\", \"kind\": \"word\"}"),
            "v.json: duplicate key \"kind\" at offset 17");
  EXPECT_EQ(vocabError("{\"tokens\": [\"a\"]}"),
            "v.json: missing key \"kind\" in the vocabulary object at offset "
            "0");
  EXPECT_EQ(vocabError(" {\"kind\": \"char\"}"),
            "v.json: missing key \"tokens\" in the vocabulary object at "
            "offset 1");
  EXPECT_EQ(vocabError("{\"kind\": 1, \"tokens\": [\"a\"]}"),
            "v.json: \"kind\" must be a string at offset 9");
  EXPECT_EQ(vocabError("{\"kind\": \"bpe\", \"tokens\": [\"a\"]}"),
            "v.json: unknown tokenizer kind \"bpe\" (expected \"char\" or "
            "\"word\") at offset 9");
  EXPECT_EQ(vocabError("{\"kind\": \"char\", \"tokens\": \"ab\"}"),
            "v.json: \"tokens\" must be an array of strings at offset 27");
  EXPECT_EQ(vocabError("{\"kind\": \"char\", \"tokens\": []}"),
            "v.json: the vocabulary has no tokens at offset 27");
  EXPECT_EQ(vocabError("[]"), "v.json: the vocabulary has no tokens at offset "
                              "0");
  EXPECT_EQ(vocabError("[\"a\", 7]"), "v.json: token 1 is not a string at "
                                      "offset 6");
  EXPECT_EQ(vocabError("[\"a\", \"\"]"), "v.json: token 1 is empty at offset "
                                         "6");
  EXPECT_EQ(vocabError("[\"a\", \"b\", \"a\"]"),
            "v.json: token 2 \"a\" repeats token 0 at offset 11");
  EXPECT_EQ(vocabError("[\"a\", \"bc\"]"),
            "v.json: token 1 \"bc\" is not a single character, as tokens of "
            "a char vocabulary must be at offset 6");
  EXPECT_EQ(vocabError("{\"kind\": \"word\", \"tokens\": [\"a\", \"b\\nc\"]}"),
            "v.json: token 1 \"b\\nc\" contains whitespace, which the word "
            "tokenizer never produces at offset 33");
  // Multi-character word tokens and single-character non-ASCII char tokens
  // are fine.
  ErrorOr<Vocabulary> ok = Vocabulary::fromJson(
      "{\"kind\": \"word\", \"tokens\": [\"<eos>\", \"caf\\u00e9\"]}",
      "v.json");
  EXPECT_TRUE(ok.ok()) << ok.error();
}

TEST(TextDataTest, VocabularyFileErrors) {
  ScratchDir dir;
  std::string missing = dir.path("none.json");
  ErrorOr<Vocabulary> v = Vocabulary::load(missing);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error(), missing + ": cannot open: No such file or directory");

  std::string bad = dir.path("bad.json");
  writeText(bad, "[\"a\", \"\xff\"]");
  v = Vocabulary::load(bad);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error(), bad + ": invalid UTF-8 in JSON string at offset 7");

  Vocabulary words = Vocabulary::build("word", "x\n");
  std::string unwritable = dir.path("no/such/dir/v.json");
  Status s = words.save(unwritable);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().rfind(unwritable + ": cannot create temporary file", 0),
            0u)
      << s.error();
}

//===----------------------------------------------------------------------===//
// Token-id streams
//===----------------------------------------------------------------------===//

TEST(TextDataTest, ReadsTokenStreams) {
  ScratchDir dir;
  std::string path = dir.path("ids.npy");
  ASSERT_TRUE(writeNpy(path, Tensor::i64({4}, {3, 1, 4, 1})).ok());
  ErrorOr<std::vector<int64_t>> ids = readTokenStream(path);
  ASSERT_TRUE(ids.ok()) << ids.error();
  EXPECT_EQ(*ids, (std::vector<int64_t>{3, 1, 4, 1}));

  // int32, as numpy gives on some platforms.
  ids = readTokenStream(dataPath("i32_3.npy"));
  ASSERT_TRUE(ids.ok()) << ids.error();
  EXPECT_EQ(ids->size(), 3u);
}

TEST(TextDataTest, TokenStreamErrors) {
  ScratchDir dir;
  std::string path = dir.path("ids.npy");
  ASSERT_TRUE(writeNpy(path, Tensor::f32({2}, {1, 2})).ok());
  ErrorOr<std::vector<int64_t>> ids = readTokenStream(path);
  ASSERT_FALSE(ids.ok());
  EXPECT_EQ(ids.error(),
            path +
                ": token ids must be int64 or int32, found f32 of shape [2]");

  ASSERT_TRUE(writeNpy(path, Tensor::i64({2, 2}, {1, 2, 3, 4})).ok());
  ids = readTokenStream(path);
  ASSERT_FALSE(ids.ok());
  EXPECT_EQ(ids.error(),
            path + ": token ids must be a 1-D array, found shape [2, 2]");

  ASSERT_TRUE(writeNpy(path, Tensor::i64({}, {5})).ok());
  ids = readTokenStream(path);
  ASSERT_FALSE(ids.ok());
  EXPECT_EQ(ids.error(),
            path + ": token ids must be a 1-D array, found shape []");

  ASSERT_TRUE(writeNpy(path, Tensor::i64({0}, {})).ok());
  ids = readTokenStream(path);
  ASSERT_FALSE(ids.ok());
  EXPECT_EQ(ids.error(), path + ": the token array is empty");

  // The npy reader's own messages pass through.
  std::string text = dir.path("text.npy");
  writeText(text, "not an npy file");
  ids = readTokenStream(text);
  ASSERT_FALSE(ids.ok());
  EXPECT_EQ(ids.error().rfind(text + ": bad magic at offset 0", 0), 0u)
      << ids.error();
}

TEST(TextDataTest, ChecksTokenIds) {
  EXPECT_TRUE(checkTokenIds({0, 5, 22}, 23, "train.npy").ok());
  EXPECT_TRUE(checkTokenIds({}, 23, "train.npy").ok());
  std::vector<int64_t> ids(20, 1);
  ids[17] = -3;
  ids[18] = 99;
  Status s = checkTokenIds(ids, 23, "train.npy");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error(), "train.npy: token id -3 at index 17 is outside the "
                       "vocabulary [0, 23)");
  s = checkTokenIds({0, 23}, 23, "valid.npy");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error(), "valid.npy: token id 23 at index 1 is outside the "
                       "vocabulary [0, 23)");
}

//===----------------------------------------------------------------------===//
// Language-model batches
//===----------------------------------------------------------------------===//

std::vector<int64_t> iota(int64_t n) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    v[i] = 100 + i;
  return v;
}

std::vector<int64_t> values(const Tensor &t) {
  EXPECT_EQ(t.dtype, DType::I64);
  return std::vector<int64_t>(t.i64Data(), t.i64Data() + t.numElements());
}

TEST(TextDataTest, BatchifiesColumnMajor) {
  // 26 tokens in batches of 4: nbatch = 6, the last 2 tokens are dropped,
  // column b holds tokens [6b, 6b + 6).
  ErrorOr<Batchified> b = batchify(iota(26), 4, 4, "train");
  ASSERT_TRUE(b.ok()) << b.error();
  EXPECT_EQ(b->rows, 6);
  EXPECT_EQ(b->batch, 4);
  EXPECT_EQ(b->data, (std::vector<int64_t>{100, 106, 112, 118, //
                                           101, 107, 113, 119, //
                                           102, 108, 114, 120, //
                                           103, 109, 115, 121, //
                                           104, 110, 116, 122, //
                                           105, 111, 117, 123}));
}

TEST(TextDataTest, GetsBatchesWithAShortLastChunk) {
  ErrorOr<Batchified> b = batchify(iota(26), 4, 4, "train");
  ASSERT_TRUE(b.ok()) << b.error();
  // range(0, 6 - 1, 4) = [0, 4].
  ASSERT_EQ(numChunks(*b, 4), 2);
  Tensor tokens, targets;
  getBatch(*b, 0, 4, tokens, targets);
  EXPECT_EQ(tokens.shape, (std::vector<int64_t>{4, 4}));
  EXPECT_EQ(targets.shape, (std::vector<int64_t>{4, 4}));
  EXPECT_EQ(values(tokens), (std::vector<int64_t>{100, 106, 112, 118, //
                                                  101, 107, 113, 119, //
                                                  102, 108, 114, 120, //
                                                  103, 109, 115, 121}));
  EXPECT_EQ(values(targets), (std::vector<int64_t>{101, 107, 113, 119, //
                                                   102, 108, 114, 120, //
                                                   103, 109, 115, 121, //
                                                   104, 110, 116, 122}));
  // seq_len = min(4, 6 - 1 - 4) = 1.
  getBatch(*b, 1, 4, tokens, targets);
  EXPECT_EQ(tokens.shape, (std::vector<int64_t>{1, 4}));
  EXPECT_EQ(values(tokens), (std::vector<int64_t>{104, 110, 116, 122}));
  EXPECT_EQ(values(targets), (std::vector<int64_t>{105, 111, 117, 123}));
}

TEST(TextDataTest, CountsChunks) {
  auto chunks = [](int64_t tokens, int64_t batch, int64_t bptt) {
    ErrorOr<Batchified> b = batchify(iota(tokens), batch, bptt, "data");
    EXPECT_TRUE(b.ok()) << b.error();
    return b.ok() ? numChunks(*b, bptt) : -1;
  };
  EXPECT_EQ(chunks(10, 2, 2), 2); // rows 5: range(0, 4, 2)
  EXPECT_EQ(chunks(12, 2, 2), 3); // rows 6: range(0, 5, 2)
  EXPECT_EQ(chunks(2, 1, 35), 1); // rows 2: one chunk of one step
  EXPECT_EQ(chunks(100, 1, 1), 99);
  ErrorOr<Batchified> b = batchify(iota(2), 1, 35, "data");
  ASSERT_TRUE(b.ok());
  Tensor tokens, targets;
  getBatch(*b, 0, 35, tokens, targets);
  EXPECT_EQ(tokens.shape, (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(values(tokens), (std::vector<int64_t>{100}));
  EXPECT_EQ(values(targets), (std::vector<int64_t>{101}));
}

TEST(TextDataTest, BatchifyErrors) {
  ErrorOr<Batchified> b = batchify(iota(7), 4, 35, "corpus.txt");
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error(), "corpus.txt has 7 tokens, too few for one batch of 4 "
                       "sequences (need at least 2\xc2\xb7"
                       "4 = 8)");
  b = batchify({}, 1, 35, "valid.npy");
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error(), "valid.npy has 0 tokens, too few for one batch of 1 "
                       "sequences (need at least 2\xc2\xb7"
                       "1 = 2)");
  b = batchify(iota(10), INT64_MAX, 35, "x");
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error(), "x has 10 tokens, too few for one batch of "
                       "9223372036854775807 sequences (need at least "
                       "2\xc2\xb7"
                       "9223372036854775807 = more than 2^63)");
  b = batchify(iota(10), 0, 35, "x");
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error(), "x: the batch size must be at least 1, got 0");
  b = batchify(iota(10), 2, 0, "x");
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error(), "x: the BPTT length must be at least 1, got 0");
}

TEST(TextDataTest, EndToEndFromACorpus) {
  ScratchDir dir;
  std::string path = dir.path("corpus.txt");
  writeText(path, "a b c\nb c d\n");
  ErrorOr<std::string> text = readTextCorpus(path);
  ASSERT_TRUE(text.ok()) << text.error();
  Vocabulary v = Vocabulary::build("word", *text);
  ErrorOr<std::vector<int64_t>> ids = v.encode(*text, path);
  ASSERT_TRUE(ids.ok()) << ids.error();
  // a=0 b=1 c=2 <eos>=3 d=4
  EXPECT_EQ(*ids, (std::vector<int64_t>{0, 1, 2, 3, 1, 2, 4, 3}));
  EXPECT_TRUE(checkTokenIds(*ids, v.size(), path).ok());
  ErrorOr<Batchified> b = batchify(*ids, 2, 3, path);
  ASSERT_TRUE(b.ok()) << b.error();
  EXPECT_EQ(b->data, (std::vector<int64_t>{0, 1, 1, 2, 2, 4, 3, 3}));
}

} // namespace
