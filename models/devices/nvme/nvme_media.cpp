#include "models/devices/nvme/nvme_media.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>

#include "sim/assert.h"

namespace hmmsim {

NvmeMedia::NvmeMedia(const NvmeMediaParams& params, const std::string& statsName)
    : params_(params),
      stats_(statsName),
      blocksRead_(stats_.counter("blocks_read", "blocks", "blocks read from the media")),
      blocksWritten_(stats_.counter("blocks_written", "blocks", "blocks written to the media")),
      busyPs_(stats_.counter("busy_ps", "ps", "time the media bandwidth was in use")) {
  const std::string err = validate(params);
  HMMSIM_ASSERT(err.empty(), "NvmeMedia " << statsName << ": " << err);
}

std::string NvmeMedia::validate(const NvmeMediaParams& p) {
  std::ostringstream e;
  if (p.blockBytes < 512 || p.blockBytes > 4096 || (p.blockBytes & (p.blockBytes - 1)) != 0)
    e << "blockBytes " << p.blockBytes << " is not a power of two in [512, 4096]";
  else if (p.capacityBlocks == 0)
    e << "capacityBlocks must be > 0";
  else if (!(p.readBandwidthGbps > 0) || !(p.writeBandwidthGbps > 0))
    e << "readBandwidthGbps and writeBandwidthGbps must be > 0";
  return e.str();
}

void NvmeMedia::read(std::uint64_t lba, std::uint64_t n, std::uint8_t* dst) const {
  const std::uint32_t bs = params_.blockBytes;
  for (std::uint64_t i = 0; i < n; ++i) {
    const auto it = blocks_.find(lba + i);
    if (it == blocks_.end())
      std::memset(dst + i * bs, 0, bs);
    else
      std::memcpy(dst + i * bs, it->second.get(), bs);
  }
}

void NvmeMedia::write(std::uint64_t lba, std::uint64_t n, const std::uint8_t* src) {
  const std::uint32_t bs = params_.blockBytes;
  for (std::uint64_t i = 0; i < n; ++i) {
    auto& b = blocks_[lba + i];
    if (!b) b = std::make_unique<std::uint8_t[]>(bs);
    std::memcpy(b.get(), src + i * bs, bs);
  }
}

std::uint64_t NvmeMedia::book(std::uint64_t arrivePs, std::uint64_t latencyPs, std::uint64_t bytes,
                              double gbps) {
  // bytes * 8 bits / (gbps * 1e9 bit/s) = bytes * 8000 / gbps ps.
  const auto xferPs = static_cast<std::uint64_t>(std::llround(static_cast<double>(bytes) * 8000.0 / gbps));
  const std::uint64_t start = std::max(arrivePs + latencyPs, busyUntilPs_);
  busyUntilPs_ = start + xferPs;
  busyPs_ += xferPs;
  return busyUntilPs_;
}

std::uint64_t NvmeMedia::bookRead(std::uint64_t arrivePs, std::uint64_t bytes) {
  blocksRead_ += bytes / params_.blockBytes;
  return book(arrivePs, params_.readLatencyPs, bytes, params_.readBandwidthGbps);
}

std::uint64_t NvmeMedia::bookWrite(std::uint64_t arrivePs, std::uint64_t bytes) {
  blocksWritten_ += bytes / params_.blockBytes;
  return book(arrivePs, params_.writeLatencyPs, bytes, params_.writeBandwidthGbps);
}

}  // namespace hmmsim
