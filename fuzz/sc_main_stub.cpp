// libsystemc.so's main() calls sc_main(), so linking it into an executable that has its own
// main (libFuzzer's, or the standalone corpus runner) needs the symbol. Never called: the fuzz
// targets drive the pure cores and never elaborate SystemC.
// Debian's libsystemc.so refers to it with C linkage.
extern "C" int sc_main(int /*argc*/, char* /*argv*/[]) {
  return 0;
}
