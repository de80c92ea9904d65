# Turns Prelude.loom into a C++ raw string literal (build-time step).
file(READ ${INPUT} CONTENT)
file(WRITE ${OUTPUT} "static const char kPreludeSource[] = R\"loomprelude(${CONTENT})loomprelude\";\n")
