//===- TextDataFuzzer.cpp - corpora, tokenizers and vocabularies --------===//
//
// Any bytes as a corpus: the UTF-8 check finds the first bad byte or none;
// a valid corpus (what readTextCorpus accepts) is split by both
// tokenizers, the vocabulary built from it encodes it into ids within the
// vocabulary, and its JSON form reads back as the same vocabulary. Any
// bytes as a vocabulary file: fromJson returns a vocabulary or an error.
//
//===----------------------------------------------------------------------===//
#include "runtime/TextData.h"

#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string text(reinterpret_cast<const char *>(data), size);
  auto parsed = loom::Vocabulary::fromJson(text, "fuzz.json");
  (void)parsed;
  if (auto bad = loom::findInvalidUtf8(text); bad) {
    if (*bad >= size)
      std::abort();
    return 0;
  }
  for (const char *kind : {"char", "word"}) {
    loom::Vocabulary v = loom::Vocabulary::build(kind, text);
    auto ids = v.encode(text, "fuzz");
    if (!ids.ok())
      std::abort(); // a vocabulary encodes the text it was built from
    for (int64_t id : *ids)
      if (id < 0 || id >= v.size())
        std::abort();
    if (v.size() == 0)
      continue;
    auto back = loom::Vocabulary::fromJson(v.toJson(), "fuzz");
    if (!back.ok() || back->tokens != v.tokens || back->kind != v.kind)
      std::abort();
  }
  return 0;
}
