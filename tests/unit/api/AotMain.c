/* A host program for the ahead-of-time character LM (charlm.h and the
 * object from `loom compile --emit=obj`): no LLVM, no MLIR, only
 * libloom_runtime.a. It runs one batch with the weights embedded in the
 * object, or read at run time from a safetensors file (a minimal reader
 * below), and writes its inputs and outputs as .npy files for aot-test.sh
 * to compare with `loom run` (the JIT).
 *
 *   aot-main OUT_DIR [WEIGHTS.safetensors]
 */

#include "charlm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { T = 9, B = 2, V = 75, H = 128 };

static int writeNpy(const char *dir, const char *name, const char *descr,
                    const int64_t *shape, int rank, const void *data,
                    size_t bytes) {
  char path[4096], header[256];
  int n, k;
  FILE *f;
  snprintf(path, sizeof path, "%s/%s.npy", dir, name);
  n = snprintf(header, sizeof header,
               "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
  for (k = 0; k < rank; ++k)
    n += snprintf(header + n, sizeof header - n, "%lld, ", (long long)shape[k]);
  n += snprintf(header + n, sizeof header - n, "), }");
  while ((n + 11) % 64)
    header[n++] = ' ';
  header[n++] = '\n';
  f = fopen(path, "wb");
  if (!f)
    return 1;
  fwrite("\x93NUMPY\x01\x00", 1, 8, f);
  fputc(n & 0xff, f);
  fputc(n >> 8, f);
  fwrite(header, 1, (size_t)n, f);
  fwrite(data, 1, bytes, f);
  return fclose(f) != 0;
}

/* Reads the F32 tensor `name` of `count` floats from a safetensors file. */
static float *readTensor(const char *file, size_t size, const char *name,
                         int64_t count) {
  uint64_t headerLen = 0;
  char key[512];
  const char *at, *offsets;
  unsigned long long begin, end;
  float *out;
  int k;
  for (k = 0; k < 8; ++k)
    headerLen |= (uint64_t)(unsigned char)file[k] << (8 * k);
  if (8 + headerLen > size)
    return NULL;
  snprintf(key, sizeof key, "\"%s\":", name);
  at = strstr(file + 8, key);
  if (!at || at > file + 8 + headerLen)
    return NULL;
  offsets = strstr(at, "\"data_offsets\":[");
  if (!offsets || sscanf(offsets + 16, "%llu,%llu", &begin, &end) != 2 ||
      end - begin != (unsigned long long)count * 4 ||
      8 + headerLen + end > size)
    return NULL;
  out = (float *)malloc((size_t)count * 4);
  if (out)
    memcpy(out, file + 8 + headerLen + begin, (size_t)count * 4);
  return out;
}

int main(int argc, char **argv) {
  static int64_t tokens[T * B];
  static float h0[2 * B * H], c0[2 * B * H], logits[T * B * V], hn[2 * B * H],
      cn[2 * B * H];
  const int64_t tokShape[] = {T, B}, stateShape[] = {2, B, H},
                logitShape[] = {T, B, V};
  float *params[CharLM_NUM_PARAMS];
  CharLM_model m;
  int k, rc;
  if (argc < 2) {
    fprintf(stderr, "usage: aot-main OUT_DIR [WEIGHTS.safetensors]\n");
    return 2;
  }
  if (argc > 2) {
    FILE *f = fopen(argv[2], "rb");
    char *file;
    long size;
    if (!f || fseek(f, 0, SEEK_END) || (size = ftell(f)) < 8)
      return 2;
    rewind(f);
    file = (char *)malloc((size_t)size + 1);
    if (!file || fread(file, 1, (size_t)size, f) != (size_t)size)
      return 2;
    file[size] = 0;
    fclose(f);
    for (k = 0; k < CharLM_NUM_PARAMS; ++k) {
      params[k] = readTensor(file, (size_t)size, CharLM_param_names[k],
                             CharLM_param_elements[k]);
      if (!params[k]) {
        fprintf(stderr, "%s: no F32 tensor '%s' of %lld floats\n", argv[2],
                CharLM_param_names[k], (long long)CharLM_param_elements[k]);
        return 2;
      }
    }
    free(file);
    rc = CharLM_init(&m, (const float *const *)params);
    /* The model keeps the pointers: the arrays live until the end. */
  } else {
    rc = CharLM_init(&m, NULL);
  }
  if (rc) {
    fprintf(stderr, "CharLM_init: %d\n", rc);
    return 1;
  }
  for (k = 0; k < T * B; ++k)
    tokens[k] = (k * 31 + 7) % V;
  for (k = 0; k < 2 * B * H; ++k) {
    h0[k] = 0.01f * (float)(k % 13) - 0.06f;
    c0[k] = 0.02f * (float)(k % 7) - 0.05f;
  }
  rc = CharLM_run(&m, T, B, tokens, h0, c0, logits, hn, cn);
  if (rc) {
    fprintf(stderr, "CharLM_run: %d\n", rc);
    return 1;
  }
  /* A token id outside the vocabulary is refused (input 1), nothing run. */
  tokens[3] = V;
  logits[0] = 12345.0f;
  if (CharLM_run(&m, T, B, tokens, h0, c0, logits, hn, cn) != 1 ||
      logits[0] != 12345.0f) {
    fprintf(stderr, "a bad token id was not refused\n");
    return 1;
  }
  tokens[3] = (3 * 31 + 7) % V;
  rc = CharLM_run(&m, T, B, tokens, h0, c0, logits, hn, cn);
  CharLM_free(&m);
  if (rc)
    return 1;
  if (writeNpy(argv[1], "tokens", "<i8", tokShape, 2, tokens, sizeof tokens) ||
      writeNpy(argv[1], "h0", "<f4", stateShape, 3, h0, sizeof h0) ||
      writeNpy(argv[1], "c0", "<f4", stateShape, 3, c0, sizeof c0) ||
      writeNpy(argv[1], "logits", "<f4", logitShape, 3, logits,
               sizeof logits) ||
      writeNpy(argv[1], "h_n", "<f4", stateShape, 3, hn, sizeof hn) ||
      writeNpy(argv[1], "c_n", "<f4", stateShape, 3, cn, sizeof cn)) {
    fprintf(stderr, "cannot write to %s\n", argv[1]);
    return 1;
  }
  printf("ran CharLM ahead of time (%s weights)\n",
         argc > 2 ? "run-time" : "embedded");
  return 0;
}
