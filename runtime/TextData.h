//===- TextData.h - Text corpora, tokenizers and LM batching ----*- C++ -*-===//
//
// The training data of language models: UTF-8 text corpora, the `char` and
// `word` tokenizers, vocabularies (saved as JSON beside a checkpoint),
// pre-tokenized id streams in .npy files, and the batch layout of
// pytorch/examples word_language_model (batchify + get_batch).
//
// Word tokenization follows that example's data.py exactly:
//
//   with open(path, 'r', encoding="utf8") as f:
//       for line in f:
//           words = line.split() + ['<eos>']
//
// that is, lines end at "\n", "\r\n" or a lone "\r" (Python's universal
// newlines), every line -- the last one too, even without a line end --
// yields its whitespace-separated words followed by "<eos>", a file ending in
// a line end has no extra empty last line, and "whitespace" is what Python's
// str.split() splits on (the Unicode White_Space characters plus U+001C to
// U+001F). Character tokenization makes every code point a token; there is
// no newline translation, so a line end is the "\n" token.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_RUNTIME_TEXTDATA_H
#define LOOM_RUNTIME_TEXTDATA_H

#include "runtime/Status.h"
#include "runtime/Tensor.h"

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace loom {

//===----------------------------------------------------------------------===//
// UTF-8 text
//===----------------------------------------------------------------------===//

/// The byte offset of the first byte of the first ill-formed UTF-8 sequence
/// in data (Unicode's Table 3-7: no overlong forms, no encoded surrogates,
/// nothing above U+10FFFF, no sequence cut short -- including at the end),
/// or std::nullopt if all of data is well-formed.
std::optional<size_t> findInvalidUtf8(const char *data, size_t size);
inline std::optional<size_t> findInvalidUtf8(const std::string &text) {
  return findInvalidUtf8(text.data(), text.size());
}

/// Reads a text corpus: a non-empty file of valid UTF-8. Errors:
/// "<path>: cannot open: <reason>", "<path>: the corpus is empty",
/// "<path>: not valid UTF-8 at byte offset N".
ErrorOr<std::string> readTextCorpus(const std::string &path);

/// Makes text printable inside a quoted error message: '"' and '\\' are
/// backslash-escaped, "\n", "\r" and "\t" become those escapes, other ASCII
/// control bytes and bytes of ill-formed UTF-8 become "\xNN", and invisible
/// code points (C1 controls, Unicode whitespace other than ' ', U+FEFF)
/// become "\uNNNN".
std::string escapeForMessage(const std::string &text);

//===----------------------------------------------------------------------===//
// Tokenizers
//===----------------------------------------------------------------------===//

/// The token that ends every line under the word tokenizer.
inline constexpr const char *kEndOfLineToken = "<eos>";

/// Whether kind names a tokenizer: "char" or "word".
bool isTokenizerKind(const std::string &kind);

/// Success if kind names a tokenizer; otherwise
/// "unknown tokenizer 'X' (expected 'char' or 'word')".
Status checkTokenizerKind(const std::string &kind);

/// One token of a text and the byte offset where it starts (for "<eos>",
/// the offset of the line end, or the text's size after an unterminated
/// last line).
struct TextToken {
  std::string text;
  size_t offset = 0;
};

/// Splits text with the tokenizer kind ("char" or "word"; anything else
/// yields no tokens). Text should be valid UTF-8; each byte of an ill-formed
/// sequence is taken as one (non-whitespace) character.
std::vector<TextToken> tokenize(const std::string &kind,
                                const std::string &text);

//===----------------------------------------------------------------------===//
// Vocabularies
//===----------------------------------------------------------------------===//

/// A tokenizer kind and its tokens; a token's id is its index in tokens.
///
/// JSON form: {"kind": "char", "tokens": ["a", "b", ...]}. A bare array of
/// strings (the vocab.json of examples/charlm) is also read, as a "char"
/// vocabulary.
struct Vocabulary {
  /// "char" or "word".
  std::string kind;
  std::vector<std::string> tokens;
  /// Token -> id; the inverse of tokens.
  std::map<std::string, int64_t> index;

  int64_t size() const { return static_cast<int64_t>(tokens.size()); }

  /// The id of token, or std::nullopt.
  std::optional<int64_t> lookup(const std::string &token) const;

  /// The vocabulary of text under the tokenizer kind ("char" or "word";
  /// check it with checkTokenizerKind first), ids in first-seen order as
  /// pytorch/examples' Dictionary assigns them.
  static Vocabulary build(const std::string &kind, const std::string &text);

  /// The ids of text's tokens. Errors name where (a file name, "--prompt",
  /// ...): "<where>: not valid UTF-8 at byte offset N", or
  /// "<where>: token \"X\" (at byte offset N) is not in the vocabulary (the
  /// vocabulary has K tokens)".
  ErrorOr<std::vector<int64_t>> encode(const std::string &text,
                                       const std::string &where) const;

  /// The JSON form, one line ending in "\n".
  std::string toJson() const;

  /// Parses the JSON form (or the legacy bare array). Rejects a missing,
  /// unknown or repeated key, a kind other than "char" or "word", an empty
  /// token list, and tokens that are not strings, are empty, repeat an
  /// earlier token, are not one code point (char) or contain whitespace
  /// (word). Errors read "<path>: ... at offset N".
  static ErrorOr<Vocabulary> fromJson(const std::string &text,
                                      const std::string &path);

  /// Writes toJson() to path atomically. Errors start with "<path>: ".
  Status save(const std::string &path) const;

  /// Reads a vocabulary file. Errors start with "<path>: ".
  static ErrorOr<Vocabulary> load(const std::string &path);
};

//===----------------------------------------------------------------------===//
// Token-id streams
//===----------------------------------------------------------------------===//

/// Reads pre-tokenized data: a non-empty 1-D int64 or int32 .npy array.
/// Errors start with "<path>: " (the npy reader's own messages included).
ErrorOr<std::vector<int64_t>> readTokenStream(const std::string &path);

/// Success if every id is in [0, vocabSize); otherwise
/// "<where>: token id -3 at index 17 is outside the vocabulary [0, 23)"
/// for the first one that is not.
Status checkTokenIds(const std::vector<int64_t> &ids, int64_t vocabSize,
                     const std::string &where);

//===----------------------------------------------------------------------===//
// Language-model batches (pytorch/examples word_language_model)
//===----------------------------------------------------------------------===//

/// A token stream laid out as batchify does:
///
///   nbatch = len(data) // bsz
///   data = data[:nbatch * bsz].view(bsz, -1).t()      # [nbatch, bsz]
///
/// Column b holds stream[b * rows, (b + 1) * rows); the tail that does not
/// fill a column is dropped.
struct Batchified {
  int64_t rows = 0;
  int64_t batch = 0;
  /// Row-major [rows, batch]: data[r * batch + b] = stream[b * rows + r].
  std::vector<int64_t> data;
};

/// Lays out stream for batch sequences. The stream must give at least one
/// BPTT step, i.e. rows >= 2; otherwise: "<what> has N tokens, too few for
/// one batch of B sequences (need at least 2·B = M)". A batch or bptt below
/// 1 is an error too.
ErrorOr<Batchified> batchify(const std::vector<int64_t> &stream, int64_t batch,
                             int64_t bptt, const std::string &what);

/// The number of BPTT chunks in an epoch, as
/// `len(range(0, rows - 1, bptt))`: ceil((rows - 1) / bptt).
int64_t numChunks(const Batchified &data, int64_t bptt);

/// Chunk number `chunk` (0 <= chunk < numChunks) of an epoch, as get_batch
/// at i = chunk * bptt:
///
///   seq_len = min(bptt, rows - 1 - i)
///   tokens  = source[i : i + seq_len]             # [seq_len, batch]
///   targets = source[i + 1 : i + 1 + seq_len]     # [seq_len, batch]
///
/// Both are I64 tensors, sequence-major; only the last chunk may be short.
void getBatch(const Batchified &data, int64_t chunk, int64_t bptt,
              Tensor &tokens, Tensor &targets);

} // namespace loom

#endif // LOOM_RUNTIME_TEXTDATA_H
