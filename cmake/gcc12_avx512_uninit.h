// Force-included (-include) into every C++ file when building with GCC < 13; see CMakeLists.txt.
//
// GCC 12's AVX-512 headers make an "undefined" vector with the self-initialisation
// `__m512 __Y = __Y;` (_mm512_undefined_ps and friends). Once those inline into Eigen's packet
// code or our kernels, GCC reports '__Y' (maybe) used uninitialized at that header line, well over
// a thousand times per build: GCC bug 105593, fixed in GCC 13. The value is a deliberate "don't
// care", so the warnings are false. Including <immintrin.h> first, with the two warnings ignored,
// silences them exactly at the header's own lines: a real uninitialized read in our code is
// located in our file and is still reported.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
