// The device types' parameter tables. See device_params.h.
#include "models/platform/device_params.h"

#include "models/platform/builtin_devices.h"
#include "sim/units.h"

namespace hmmsim {

namespace {
const std::vector<std::pair<std::string, PixelFormat>> kFormats = {{"rgb888", PixelFormat::Rgb888},
                                                                   {"xrgb8888", PixelFormat::Xrgb8888}};

}  // namespace

const ParamTable<DmirrorParams>& dmirrorParamTable() {
  static const ParamTable<DmirrorParams> table = [] {
    ParamTable<DmirrorParams> t("dmirror", "lib/test_hmm.c's dmirror devices (DmirrorParams)");
    t.bytes("chunk", &DmirrorParams::chunkBytes,
            "device memory chunk (DEVMEM_CHUNK_SIZE), a multiple of 2 MiB", 2ull << 20, 1ull << 40);
    t.bytes("capacity", &DmirrorParams::capacityBytes, "most device memory (chunks added on demand)",
            2ull << 20, 1ull << 44);
    t.integer("fault_chunk_pages", &DmirrorParams::faultChunkPages, "pages",
              "pages per hmm_range in dmirror_fault", 1, 1 << 20);
    t.integer("max_retries", &DmirrorParams::maxRetries, "restarts",
              "hmm_range_fault restart budget per range", 1, 1 << 30);
    t.boolean("evict_on_release", &DmirrorParams::evictOnRelease,
              "evict the device's chunks when a handle closes");
    t.boolean("buggy_fault", &DmirrorParams::faultStoresDevicePage,
              "reproduce 6.12's dmirror_do_fault mistake (stores a device-private page)");
    t.custom({"copy_bandwidth", ParamType::Bitrate, "bit/s",
              formatBitsPerSecond(MigrateCopyParams{}.bytesPerSecond * 8),
              "migration copy rate (platform: the migrating thread waits for its copies)", "> 0"},
             [](DmirrorParams& p, const ConfigNode& n) {
               const double v = n.asBitsPerSecond();
               if (!(v > 0)) n.fail("expected a rate above 0");
               p.copy.bytesPerSecond = v / 8;
             });
    t.custom(
        {"copy_latency", ParamType::Duration, "ps", formatDurationPs(MigrateCopyParams{}.perPageLatencyPs),
         "fixed cost per folio a migration copies or clears", "0ps .. 1s"},
        [](DmirrorParams& p, const ConfigNode& n) {
          const std::uint64_t v = n.asDurationPs();
          if (v > 1'000'000'000'000ull) n.fail("expected at most 1s");
          p.copy.perPageLatencyPs = v;
        });
    t.check([](const DmirrorParams& p) -> std::string {
      if (p.chunkBytes % (2ull << 20) != 0) return "chunk must be a multiple of 2MiB";
      if (p.capacityBytes < p.chunkBytes) return "capacity must be at least one chunk";
      return "";
    });
    return t;
  }();
  return table;
}

const ParamTable<CameraParams>& cameraSensorParamTable() {
  static const ParamTable<CameraParams> table = [] {
    ParamTable<CameraParams> t("camera.sensor", "the camera's sensor mode (CameraParams)");
    t.integer("width", &CameraParams::width, "pixels", "active pixels per line", 1, 16384);
    t.integer("height", &CameraParams::height, "lines", "active lines per frame", 1, 16384);
    t.choice("format", &CameraParams::format, "pixel layout in the buffers (V4L2 RGB24, DRM XRGB8888)",
             kFormats);
    t.real("fps", &CameraParams::fps, "frames/s", "frames per second", 0.001, 100000);
    t.integer("hblank", &CameraParams::hblankPixels, "pixel clocks", "horizontal blanking per line", 0,
              1 << 20);
    t.integer("vblank", &CameraParams::vblankLines, "lines", "vertical blanking per frame", 0, 1 << 20);
    t.bytes("stride", &CameraParams::strideBytes, "bytes from one line to the next (0: width x pixel size)",
            0, 1ull << 20);
    t.integer("seed", &CameraParams::seed, "", "seed of the test pattern", 0, INT64_MAX);
    t.integer("lines_per_dma", &CameraParams::linesPerDma, "lines", "lines collected into one DMA transfer",
              1, 16384);
    return t;
  }();
  return table;
}

namespace {

const ParamTable<ColourEngineParams>& engineTable() {
  static const ParamTable<ColourEngineParams> table = [] {
    ParamTable<ColourEngineParams> t("colour_engine.hw", "the engine's hardware (ColourEngineParams)");
    t.real("pixel_rate", &ColourEngineParams::pixelsPerSecond, "pixels/s", "transform throughput", 1, 1e12);
    t.integer("lines_per_strip", &ColourEngineParams::linesPerStrip, "lines",
              "lines read, transformed and written as one unit", 1, 16384);
    t.integer("strips_ahead", &ColourEngineParams::stripsAhead, "strips", "strip reads in flight ahead", 0,
              64);
    t.bytes("device_memory", &ColourEngineParams::deviceMemoryBytes,
            "device memory behind BAR 2 (a multiple of 2MiB, at least the BAR)", 2ull << 20, 1ull << 40);
    t.duration("local_latency", &ColourEngineParams::localLatencyPs, "latency of its own memory", 0,
               1'000'000'000);
    t.real("local_bandwidth", &ColourEngineParams::localBandwidthGbps, "Gb/s", "bandwidth of its own memory",
           0.001, 1e6);
    return t;
  }();
  return table;
}
}  // namespace

namespace {
/// The device MMU's keys of importer_dma (merged into it).
const ParamTable<ImporterMirrorParams>& importerMirrorTable() {
  static const ParamTable<ImporterMirrorParams> table = [] {
    ParamTable<ImporterMirrorParams> t("importer_mirror", "an importer's device MMU");
    t.choice("misbehave", &ImporterMirrorParams::misbehave,
             "a deliberate breach of the invalidation contract, for the checker (hmm/importer_mirror.h)",
             {{"none", ImporterMisbehaviour::None},
              {"ignore_invalidations", ImporterMisbehaviour::IgnoreInvalidations},
              {"ack_without_waiting", ImporterMisbehaviour::AckWithoutWaiting},
              {"pin_forever", ImporterMisbehaviour::PinForever},
              {"keep_old_address", ImporterMisbehaviour::KeepOldAddress}});
    t.boolean("iova_link", &ImporterMirrorParams::iovaLink,
              "behind a translating IOMMU, link the window into one IOVA range (hmm_dma_map, Linux 6.16): "
              "bursts span pages; false: dma_map_page per page (6.12, the RFC)");
    constexpr std::uint64_t kSecond = 1'000'000'000'000ull;
    t.duration("tlb_invalidation_cost", &ImporterMirrorParams::tlbInvalidationPs,
               "device TLB invalidation inside each invalidation that zapped entries (ATS: ~1-2us)", 0,
               kSecond);
    t.duration("walk_page_cost", &ImporterMirrorParams::walkPagePs,
               "hmm_range_fault walk per page of a device fault (tens of ns)", 0, kSecond);
    t.duration("fault_page_cost", &ImporterMirrorParams::faultPagePs,
               "each handle_mm_fault of a device fault's walk (page allocation and zeroing)", 0, kSecond);
    t.duration("map_page_cost", &ImporterMirrorParams::mapPagePs,
               "DMA-map step per page mapped (IOVA allocation + IOMMU PTE write, or p2pMap)", 0, kSecond);
    return t;
  }();
  return table;
}
}  // namespace

const ParamTable<ImporterDmaParams>& importerDmaParamTable() {
  static const ParamTable<ImporterDmaParams> table = [] {
    ParamTable<ImporterDmaParams> t("importer_dma",
                                    "how an importing device reaches process memory (dma: key)");
    t.bytes("max_burst", &ImporterDmaParams::maxBurstBytes, "largest burst (a multiple of 4KiB)", 4096,
            1ull << 30);
    t.duration("fault_cost", &ImporterDmaParams::faultPs, "device page fault service time", 0,
               1'000'000'000'000ull);
    t.integer("fault_ahead", &ImporterDmaParams::faultAheadPages, "pages", "pages one device fault maps", 1,
              1 << 30);
    t.boolean("fault_ahead_past_end", &ImporterDmaParams::faultAheadPastEnd,
              "a fault maps fault_ahead pages even past the transfer's end");
    t.integer("fault_around", &ImporterDmaParams::faultAroundPages, "pages",
              "a fault also maps the pages of the aligned block this big around it that the access would "
              "fault on (a power of 2; 1 = none; each device's dma key names its own default)",
              1, 1 << 20);
    t.integer("max_fault_retries", &ImporterDmaParams::maxFaultRetries, "faults",
              "device faults tried for one page before the transfer fails", 1, 1 << 20);
    t.merge(importerMirrorTable(), &ImporterDmaParams::mirror);
    t.check([](const ImporterDmaParams& p) { return p.check(); });
    return t;
  }();
  return table;
}

const ParamTable<CameraDeviceParams>& cameraParamTable() {
  static const ParamTable<CameraDeviceParams> table = [] {
    ParamTable<CameraDeviceParams> t("camera",
                                     "an image sensor streaming frames by DMA into process buffers");
    t.merge(cameraSensorParamTable(), &CameraDeviceParams::camera);
    t.duration("irq_cost", &CameraDeviceParams::irqCostPs, "CPU time of the frame interrupt handler", 0,
               1'000'000'000'000ull);
    t.custom({"prefault", ParamType::Bool, "", "true", "map every user buffer when it is given", ""},
             [](CameraDeviceParams& p, const ConfigNode& n) { p.driver.prefault = n.asBool(); });
    t.custom(
        {"dma", ParamType::Table, "", "",
         "how it reaches the buffers (its fault_around defaults to 16 pages = 64KiB, the kernel's "
         "fault_around_bytes; a fault also maps the rest of the frame's buffer)",
         "see importer_dma"},
        [](CameraDeviceParams& p, const ConfigNode& n) { importerDmaParamTable().load(n, p.driver.dma); });
    t.check([](const CameraDeviceParams& p) { return p.camera.check(); });
    return t;
  }();
  return table;
}

const ParamTable<ColourEngineDeviceParams>& colourEngineParamTable() {
  static const ParamTable<ColourEngineDeviceParams> table = [] {
    ParamTable<ColourEngineDeviceParams> t(
        "colour_engine", "a colour-correction engine (3x3 matrix + LUTs) exporting its input memory");
    t.merge(engineTable(), &ColourEngineDeviceParams::engine);
    t.duration("irq_cost", &ColourEngineDeviceParams::irqCostPs, "CPU time of the job-done interrupt handler",
               0, 1'000'000'000'000ull);
    t.custom({"prefault", ParamType::Bool, "", "true", "map a VA buffer when a job first uses it", ""},
             [](ColourEngineDeviceParams& p, const ConfigNode& n) { p.driver.prefault = n.asBool(); });
    t.custom({"dma", ParamType::Table, "", "",
              "how it reaches process buffers (its fault_around defaults to 16 pages = 64KiB, the kernel's "
              "fault_around_bytes; a fault also maps the rest of the frame's buffer)",
              "see importer_dma"},
             [](ColourEngineDeviceParams& p, const ConfigNode& n) {
               importerDmaParamTable().load(n, p.driver.dma);
             });
    t.custom(
        {"ignore_map_type", ParamType::Bool, "", "false",
         "misbehaviour of its exporter: hand importers the BAR's bus address whatever the p2pdma map type "
         "(NOT_SUPPORTED included; checker rule unsupported-request)",
         ""},
        [](ColourEngineDeviceParams& p, const ConfigNode& n) {
          p.driver.exporter.ignoreMapType = n.asBool();
        });
    t.check([](const ColourEngineDeviceParams& p) { return p.engine.check(); });
    return t;
  }();
  return table;
}

namespace {

const ParamTable<NvmeMediaParams>& nvmeMediaTable() {
  static const ParamTable<NvmeMediaParams> table = [] {
    ParamTable<NvmeMediaParams> t("nvme.media", "the namespace's media (NvmeMediaParams)");
    t.integer("block_size", &NvmeMediaParams::blockBytes, "bytes",
              "logical block size (512 .. 4096, a power of two)", 512, 4096);
    t.integer("capacity_blocks", &NvmeMediaParams::capacityBlocks, "blocks", "namespace size", 1, 1ll << 40);
    t.duration("read_latency", &NvmeMediaParams::readLatencyPs, "a read's time until its first byte is ready",
               0, 1'000'000'000'000ull);
    t.duration("write_latency", &NvmeMediaParams::writeLatencyPs, "a write's time until it is programmed", 0,
               1'000'000'000'000ull);
    t.real("read_bandwidth", &NvmeMediaParams::readBandwidthGbps, "Gb/s",
           "media read bandwidth, all channels", 0.001, 1e6);
    t.real("write_bandwidth", &NvmeMediaParams::writeBandwidthGbps, "Gb/s",
           "media write bandwidth, all channels", 0.001, 1e6);
    return t;
  }();
  return table;
}

}  // namespace

const ParamTable<NvmeParams>& nvmeParamTable() {
  static const ParamTable<NvmeParams> table = [] {
    ParamTable<NvmeParams> t(
        "nvme", "an NVMe SSD: registers, doorbells, MSI-X and a CMB in BAR 0; media with real bytes");
    t.bytes("cmb_offset", &NvmeParams::cmbOffset, "where the CMB starts in BAR 0 (a multiple of 2MiB)",
            2ull << 20, 1ull << 40);
    t.bytes("cmb_size", &NvmeParams::cmbBytes,
            "controller memory buffer (a multiple of 2MiB; 0: none; must fit in BAR 0 after cmb_offset)", 0,
            1ull << 40);
    t.integer("io_queue_pairs", &NvmeParams::ioQueuePairs, "queues", "I/O queue pairs supported", 1, 1023);
    t.integer("max_queue_entries", &NvmeParams::maxQueueEntries, "entries", "largest queue (CAP.MQES + 1)", 2,
              65536);
    t.duration("cmb_access", &NvmeParams::cmbAccessPs, "the controller's own access to its CMB", 0,
               1'000'000'000ull);
    t.duration("command_overhead", &NvmeParams::commandOverheadPs, "firmware time per command", 0,
               1'000'000'000'000ull);
    t.integer("max_outstanding", &NvmeParams::maxOutstanding, "commands", "commands in flight at most", 1,
              65536);
    t.bytes("mdts", &NvmeParams::mdtsBytes, "largest data transfer of one command (a multiple of 4KiB)", 4096,
            1ull << 30);
    t.merge(nvmeMediaTable(), &NvmeParams::media);
    t.check([](const NvmeParams& p) {
      NvmeParams q = p;
      q.barBytes = p.cmbOffset + p.cmbBytes;  // BAR 0's size is the endpoint's: checked with it
      return NvmeController::validate(q);
    });
    return t;
  }();
  return table;
}

namespace {

/// A Gb/s field read as a rate with units ("256Gb/s", "32GB/s").
template <typename T>
void gbpsRow(ParamTable<T>& t, const std::string& name, double T::*field, double def,
             const std::string& desc) {
  t.custom({name, ParamType::Bitrate, "bit/s", formatBitsPerSecond(def * 1e9), desc, "> 0"},
           [=](T& x, const ConfigNode& n) {
             const double v = n.asBitsPerSecond();
             if (!(v > 0)) n.fail("expected a rate above 0");
             x.*field = v / 1e9;
           });
}

const ParamTable<GpuParams>& gpuHwTable() {
  static const ParamTable<GpuParams> table = [] {
    ParamTable<GpuParams> t("gpu.hw", "the GPU's hardware (GpuParams)");
    t.bytes("vram", &GpuParams::vramBytes, "VRAM size (a multiple of 2MiB)", 2ull << 20, 1ull << 40);
    t.custom(
        {"vram_pa", ParamType::Int, "address", "0x800000000",
         "physical address of VRAM (outside RAM; a second GPU needs its own, 2MiB aligned)", "0 .. 2^52"},
        [](GpuParams& g, const ConfigNode& n) { g.vramPa = Pa(std::uint64_t(n.asInt(0, 1ll << 52))); });
    t.integer("vram_channels", &GpuParams::vramChannels, "channels", "interleaved VRAM channels", 1, 1024);
    gbpsRow(t, "vram_channel_bandwidth", &GpuParams::vramChannelGbps, GpuParams{}.vramChannelGbps,
            "bandwidth of one VRAM channel");
    t.duration("vram_latency", &GpuParams::vramLatencyPs, "VRAM access latency", 0, 1'000'000'000);
    t.bytes("vram_interleave", &GpuParams::vramInterleaveBytes, "channel interleave (a power of two)", 64,
            1ull << 30);
    t.boolean("resizable_bar", &GpuParams::resizableBar,
              "the BAR covers all of VRAM (the endpoint's BAR must then be vram large)");
    t.real("compute_share", &GpuParams::computeShare, "", "share of VRAM bandwidth a compute kernel demands",
           0.001, 1);
    t.bytes("compute_chunk", &GpuParams::computeChunkBytes,
            "bytes a compute kernel reads (and writes back) per step (a multiple of 4KiB)", 4096, 1ull << 30);
    gbpsRow(t, "compute_rate", &GpuParams::computeRateGbps, GpuParams{}.computeRateGbps,
            "rate at which a kernel over process memory consumes its input (its arithmetic)");
    t.duration("copy_descriptor_cost", &GpuParams::copyDescriptorPs,
               "copy engine time per page copied or cleared (fetching and decoding its descriptor)", 0,
               1'000'000'000);
    return t;
  }();
  return table;
}

const ParamTable<GpuDriverParams>& gpuDriverTable() {
  static const ParamTable<GpuDriverParams> table = [] {
    ParamTable<GpuDriverParams> t("gpu.driver", "the GPU's driver (GpuDriverParams)");
    t.bytes("bar_window", &GpuDriverParams::barWindowBytes, "BAR window granularity", 4096, 1ull << 40);
    t.bytes("bar_aperture_offset", &GpuDriverParams::barApertureOffset,
            "where the VRAM aperture starts in the BAR (a multiple of bar_window; the aperture is the rest)",
            0, 1ull << 40);
    t.choice("bar_policy", &GpuDriverParams::barPolicy, "how the exporter shares its BAR windows",
             {{"lru_reclaim", BarPolicy::LruReclaim},
              {"unlimited", BarPolicy::Unlimited},
              {"per_importer_cap", BarPolicy::PerImporterCap},
              {"refuse_when_busy", BarPolicy::RefuseWhenBusy},
              {"always_refuse", BarPolicy::AlwaysRefuse}});
    t.integer("importer_cap", &GpuDriverParams::importerCapPages, "pages",
              "per_importer_cap: most pages one importer may hold", 0, INT64_MAX);
    t.duration(
        "window_program_cost", &GpuDriverParams::windowProgramPs,
        "pointing a BAR window at a VRAM chunk (BAR1 page-table writes + flush; not with a resizable BAR)", 0,
        1'000'000'000'000ull);
    t.duration("rmap_walk_page_cost", &GpuDriverParams::rmapWalkPagePs,
               "a revoke's rmap walk per device-private page it looks up", 0, 1'000'000'000'000ull);
    t.bytes("hmm_chunk", &GpuDriverParams::chunkBytes, "HMM device-private chunk (one dev_pagemap each)",
            2ull << 20, 1ull << 40);
    t.bytes(
        "kernel_region", &GpuDriverParams::kernelRegionBytes,
        "driver-owned VRAM at the top (kernels, results, progress counter; a multiple of 2MiB, below vram)",
        2ull << 20, 1ull << 40);
    return t;
  }();
  return table;
}

}  // namespace

const ParamTable<GpuDeviceParams>& gpuParamTable() {
  static const ParamTable<GpuDeviceParams> table = [] {
    ParamTable<GpuDeviceParams> t("gpu", "a GPU: VRAM behind a BAR, compute and copy engines, an HMM driver");
    t.merge(gpuHwTable(), &GpuDeviceParams::gpu);
    t.merge(gpuDriverTable(), &GpuDeviceParams::driver);
    t.duration("irq_cost", &GpuDeviceParams::irqCostPs, "CPU time of the kernel-completion interrupt handler",
               0, 1'000'000'000'000ull);
    t.custom(
        {"prefault", ParamType::Bool, "", "true", "map a kernel's process buffers when it is launched", ""},
        [](GpuDeviceParams& p, const ConfigNode& n) { p.driver.prefault = n.asBool(); });
    t.custom({"dma", ParamType::Table, "", "",
              "how its compute engine reaches process memory (as importer; its fault_around defaults to 512 "
              "pages = 2MiB, amdgpu's SVM granularity; a fault also maps the rest of the kernel's buffer)",
              "see importer_dma"},
             [](GpuDeviceParams& p, const ConfigNode& n) { importerDmaParamTable().load(n, p.driver.dma); });
    t.check([](const GpuDeviceParams& p) {
      GpuParams g = p.gpu;
      g.barApertureBytes = 2ull << 20;  // the endpoint's BAR decides (the platform checks it)
      if (std::string why = g.check(); !why.empty()) return why;
      if (p.driver.kernelRegionBytes % (2ull << 20) != 0 || p.driver.kernelRegionBytes >= p.gpu.vramBytes)
        return std::string("kernel_region must be a multiple of 2MiB below vram");
      if (p.driver.barApertureOffset % p.driver.barWindowBytes != 0)
        return "bar_aperture_offset (" + std::to_string(p.driver.barApertureOffset) +
               ") must be a multiple of bar_window (" + std::to_string(p.driver.barWindowBytes) + ")";
      return std::string();
    });
    return t;
  }();
  return table;
}

const ParamTable<NicParams>& nicParamTable() {
  static const ParamTable<NicParams> table = [] {
    ParamTable<NicParams> t("nic", "a NIC: TX ring at line rate, monitoring reads, NVMe queue writer");
    t.real("line_rate", &NicParams::lineRateGbps, "Gb/s", "line rate of the port", 0.001, 1e6);
    t.integer("packet_size", &NicParams::packetBytes, "bytes", "payload bytes per packet", 1, 1 << 20);
    t.integer("packet_overhead", &NicParams::packetOverheadBytes, "bytes",
              "wire bytes per packet besides the payload (preamble, MAC header, FCS, gap)", 0, 1 << 16);
    t.bytes("tx_buffer", &NicParams::txBufferBytes, "on-NIC transmit FIFO (at least one packet)", 1,
            1ull << 32);
    t.integer("descriptor_batch", &NicParams::descriptorBatch, "descriptors",
              "descriptors fetched per DMA read", 1, 4096);
    t.boolean("record_wire", &NicParams::recordWire, "keep every transmitted byte");
    t.integer(
        "fault_around", &NicParams::faultAroundPages, "pages",
        "a fault of its importers (TX, monitor, small_bar's regions) also maps the unmapped pages of "
        "the aligned block this big around it (a power of 2; 16 = 64KiB, the kernel's fault_around_bytes)",
        1, 1 << 20);
    t.integer("queue_retry_limit", &NicParams::queueRetryLimit, "retries",
              "queue writer: retries of an access whose fault cannot map for now, before it gives up", 0,
              1u << 20);
    t.duration("queue_retry_backoff", &NicParams::queueRetryBackoffPs,
               "queue writer: wait before retrying an access the exporter refused for now", 0,
               1'000'000'000'000ull);
    t.check([](const NicParams& p) {
      NicParams q = p;
      q.barBytes = nic::kRegisterBytes;  // BAR 0's size is the endpoint's
      return Nic::validate(q);
    });
    return t;
  }();
  return table;
}

const std::map<std::string, DeviceParamTable>& deviceParamTables() {
  static const std::map<std::string, DeviceParamTable> tables = {
      {"camera",
       {&cameraParamTable(),
        [](const ConfigNode& n) {
          CameraDeviceParams p;
          cameraParamTable().load(n, p);
          return std::any(p);
        }}},
      {"dmirror",
       {&dmirrorParamTable(),
        [](const ConfigNode& n) {
          DmirrorDeviceParams p;
          dmirrorParamTable().load(n, p.dmirror);
          return std::any(p);
        }}},
      {"colour_engine",
       {&colourEngineParamTable(),
        [](const ConfigNode& n) {
          ColourEngineDeviceParams p;
          colourEngineParamTable().load(n, p);
          return std::any(p);
        }}},
      {"gpu",
       {&gpuParamTable(),
        [](const ConfigNode& n) {
          GpuDeviceParams p;
          gpuParamTable().load(n, p);
          return std::any(p);
        }}},
      {"nic",
       {&nicParamTable(),
        [](const ConfigNode& n) {
          NicParams p;
          nicParamTable().load(n, p);
          return std::any(p);
        }}},
      {"nvme", {&nvmeParamTable(), [](const ConfigNode& n) {
                  NvmeParams p;
                  nvmeParamTable().load(n, p);
                  return std::any(p);
                }}}};
  return tables;
}

}  // namespace hmmsim
