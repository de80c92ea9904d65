//===- host.cpp - a program that embeds loom --------------------------===//
//
// Compiles a character-level language model, loads its weights, streams a
// prompt into it one character at a time (batch 1, the recurrent state kept
// by the session), then continues the text greedily for N characters.
//
//   host MODEL.loom WEIGHTS.safetensors VOCAB.json PROMPT [N]
//
// The model takes `tokens : i64[T, B]` and its recurrent states, and its
// first output is the logits [T, B, vocab] (examples/charlm/charlm.loom).
//
//===----------------------------------------------------------------------===//

#include "loom/loom.hpp"

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

// The vocabulary file: a JSON list of strings (`loom train` writes it).
static bool readVocabulary(const std::string &path,
                           std::vector<std::string> &out) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  std::string s = ss.str();
  size_t i = s.find('[');
  if (!f || i == std::string::npos)
    return false;
  for (++i; i < s.size();) {
    char c = s[i];
    if (c == ']')
      return true;
    if (c != '"') {
      ++i;
      continue;
    }
    std::string item;
    for (++i; i < s.size() && s[i] != '"'; ++i) {
      if (s[i] != '\\') {
        item += s[i];
        continue;
      }
      char e = s[++i];
      if (e == 'n')
        item += '\n';
      else if (e == 't')
        item += '\t';
      else if (e == 'u' && i + 4 < s.size()) {
        unsigned code = std::stoul(s.substr(i + 1, 4), nullptr, 16);
        i += 4;
        if (code < 0x80) {
          item += char(code);
        } else if (code < 0x800) {
          item += char(0xC0 | (code >> 6));
          item += char(0x80 | (code & 0x3F));
        } else {
          item += char(0xE0 | (code >> 12));
          item += char(0x80 | ((code >> 6) & 0x3F));
          item += char(0x80 | (code & 0x3F));
        }
      } else
        item += e; // \" \\ \/
    }
    ++i;
    out.push_back(item);
  }
  return false;
}

int main(int argc, char **argv) {
  if (argc < 5) {
    std::cerr << "usage: host MODEL.loom WEIGHTS.safetensors VOCAB.json "
                 "PROMPT [N]\n";
    return 1;
  }
  int n = argc > 5 ? std::atoi(argv[5]) : 40;
  std::vector<std::string> vocab;
  if (!readVocabulary(argv[3], vocab)) {
    std::cerr << argv[3] << ": not a JSON list of strings\n";
    return 1;
  }
  std::map<std::string, int64_t> ids;
  for (size_t k = 0; k < vocab.size(); ++k)
    ids[vocab[k]] = int64_t(k);

  // Compile once; a session holds the weights and the recurrent state.
  loom::CompileOptions options;
  options.threads = 1;
  auto module = loom::Module::compileFile(argv[1], options);
  if (!module) {
    std::cerr << module.message() << "\n";
    return 1;
  }
  loom::Session session(*module);
  if (loom::Result r = session.loadWeights(argv[2]); !r) {
    std::cerr << r.message() << "\n";
    return 1;
  }
  int64_t classes = 0;
  for (const loom::ParameterInfo &p : (*module)->parameters())
    if (p.name == "decoder.bias")
      classes = p.shape[0];
  if (classes < int64_t(vocab.size())) {
    std::cerr << "the model has " << classes << " classes, fewer than the "
              << vocab.size() << " tokens of the vocabulary\n";
    return 1;
  }

  // One step per character: tokens [1, 1] in, logits [1, 1, classes] out.
  int64_t token = 0;
  std::vector<float> logits(static_cast<size_t>(classes));
  std::vector<loom::TensorRef> in{loom::TensorRef(&token, {1, 1})};
  std::vector<loom::TensorRef> out{
      loom::TensorRef(logits.data(), {1, 1, classes})};
  std::string prompt = argv[4], text = prompt;
  if (prompt.empty()) {
    std::cerr << "the prompt is empty\n";
    return 1;
  }
  for (size_t i = 0; i < prompt.size();) {
    unsigned char c = prompt[i];
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : 4;
    std::string ch = prompt.substr(i, len);
    i += len;
    auto it = ids.find(ch);
    if (it == ids.end()) {
      std::cerr << "'" << ch << "' is not in the vocabulary\n";
      return 1;
    }
    token = it->second;
    if (loom::Result r = session.step(in, out); !r) {
      std::cerr << r.message() << "\n";
      return 1;
    }
  }
  for (int k = 0; k < n; ++k) {
    int64_t best = 0;
    for (int64_t v = 1; v < int64_t(vocab.size()); ++v)
      if (logits[v] > logits[best])
        best = v;
    text += vocab[best];
    token = best;
    if (loom::Result r = session.step(in, out); !r) {
      std::cerr << r.message() << "\n";
      return 1;
    }
  }
  std::cout << text << "\n";
  return 0;
}
