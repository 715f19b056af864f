#pragma once
// Pixel formats of the camera and the colour engine, and how a pixel is laid out in memory.
// Byte order follows the DRM fourcc definitions (drm_fourcc.h), which name a packed pixel as a
// little-endian word: RGB888 there is [23:0] R:G:B, i.e. bytes B, G, R in memory. hmmsim uses
// the V4L2 spelling for the 3-byte format instead (V4L2_PIX_FMT_RGB24: bytes R, G, B), and
// DRM_FORMAT_XRGB8888 for the 4-byte one (bytes B, G, R, X). The X byte is written 0 by every
// producer here and ignored by every consumer. Pure: no SystemC.

#include <cstdint>

// HMMSIM_MULTIVERSION: a pixel kernel gets an AVX2 clone that the loader picks where the CPU has
// it (the build targets baseline x86-64, whose SSE2 lacks a 32-bit vector multiply), vectorised
// with the dynamic cost model: 2-3x faster on the simulator's hottest loops, the same results.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define HMMSIM_MULTIVERSION \
  __attribute__((target_clones("avx2", "default"), optimize("vect-cost-model=dynamic")))
#else
#define HMMSIM_MULTIVERSION
#endif

namespace hmmsim {

/// Memory layout of one pixel.
enum class PixelFormat : std::uint8_t {
  Rgb888,    ///< 3 bytes: R, G, B (V4L2_PIX_FMT_RGB24)
  Xrgb8888,  ///< 4 bytes: B, G, R, X (DRM_FORMAT_XRGB8888, little-endian 0xXXRRGGBB); X written 0
};
const char* pixelFormatName(PixelFormat f);

/// Bytes one pixel occupies: 3 or 4.
constexpr std::uint32_t bytesPerPixel(PixelFormat f) {
  return f == PixelFormat::Rgb888 ? 3 : 4;
}

/// One pixel's colour, 8 bits per channel.
struct Rgb {
  std::uint8_t r = 0, g = 0, b = 0;
  friend bool operator==(Rgb a, Rgb b) { return a.r == b.r && a.g == b.g && a.b == b.b; }
  friend bool operator!=(Rgb a, Rgb b) { return !(a == b); }
};

/// Writes `c` at `p` in format `f` (bytesPerPixel(f) bytes).
inline void storePixel(PixelFormat f, std::uint8_t* p, Rgb c) {
  if (f == PixelFormat::Rgb888) {
    p[0] = c.r;
    p[1] = c.g;
    p[2] = c.b;
  } else {
    p[0] = c.b;
    p[1] = c.g;
    p[2] = c.r;
    p[3] = 0;
  }
}

/// Reads the pixel at `p` in format `f`.
inline Rgb loadPixel(PixelFormat f, const std::uint8_t* p) {
  if (f == PixelFormat::Rgb888) return Rgb{p[0], p[1], p[2]};
  return Rgb{p[2], p[1], p[0]};
}

}  // namespace hmmsim
