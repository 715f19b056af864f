// The NVMe-via-NIC workload on a Platform. See nvme_via_nic.h.
#include "models/platform/nvme_via_nic.h"

#include <algorithm>
#include <cstring>
#include <iomanip>
#include <optional>
#include <sstream>

#include "hmm/importer_mirror.h"
#include "models/cpu_mmu/file.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/sequencer.h"
#include "models/devices/common/driver_host.h"
#include "models/devices/common/importer_dma.h"
#include "models/devices/nic/nic_device.h"
#include "models/devices/nic/nic_driver.h"
#include "models/devices/nvme/nvme_device.h"
#include "models/devices/nvme/nvme_driver.h"
#include "models/pcie/iommu.h"
#include "models/pcie/pcie_transaction.h"
#include "models/platform/driver_thread.h"
#include "sim/assert.h"
#include "sim/config.h"

namespace hmmsim {

namespace {
constexpr std::uint64_t kPage = 4096;
constexpr std::uint16_t kQid = 1;
constexpr std::uint16_t kVector = 1;           // the I/O CQ's MSI-X entry
constexpr std::uint64_t kPollPs = 10'000'000;  // the p2p control thread's check for completion

[[noreturn]] void fail(const std::string& key, const std::string& msg) {
  throw ConfigError("<workload>", 0, 0, key, msg);
}
std::uint64_t pageUp(std::uint64_t b) {
  return (b + kPage - 1) & ~(kPage - 1);
}
std::uint64_t now() {
  return sc_core::sc_time_stamp().value();
}
/// The bytes request `i`'s buffer holds (write) or must get back (read).
std::vector<std::uint8_t> pattern(std::uint64_t n, std::uint64_t seed) {
  std::vector<std::uint8_t> v(n);
  std::uint32_t x = static_cast<std::uint32_t>(seed * 2654435761u + 1);
  for (auto& b : v) {
    x = x * 1664525u + 1013904223u;
    b = static_cast<std::uint8_t>(x >> 24);
  }
  return v;
}
const std::string& endpointOf(Platform& p, const std::string& device) {
  for (const DeviceDesc& d : p.desc().devices)
    if (d.name == device) return d.endpoint;
  fail("nic", "no device \"" + device + "\"");
}
}  // namespace

/// The CPU's loads, stores and time for the driver code, from whichever CPU thread runs it (the
/// control thread, or the interrupt controller's driver CPU running a handler).
class NvmeViaNic::CpuAccess final : public DriverHost {
 public:
  CpuAccess(Platform& p, std::uint64_t& errors) : p_(p), errors_(errors) {}
  void store(std::uint64_t pa, const void* src, std::size_t len) override {
    access(true, pa, const_cast<void*>(src), len);
  }
  void load(std::uint64_t pa, void* dst, std::size_t len) override { access(false, pa, dst, len); }
  void cpuWork(std::uint64_t ps) override {
    if (ps) seqWait(psTime(ps));
  }
  void waitInterrupt(std::uint16_t) override {
    HMMSIM_ASSERT(false, "nvme_via_nic: completions are taken by interrupt handlers, not waited for");
  }

 private:
  void access(bool write, std::uint64_t pa, void* buf, std::size_t len) {
    sc_core::sc_time d = sc_core::SC_ZERO_TIME;
    if (!p_.driverAccess(write, Pa(pa), static_cast<std::uint8_t*>(buf), len, d)) ++errors_;
    seqWait(d);
  }
  Platform& p_;
  std::uint64_t& errors_;
};

std::pair<std::string, std::string> nvmeViaNicProblem(const NvmeViaNicParams& w, const NvmeParams& np) {
  const std::uint32_t block = np.media.blockBytes;
  if (w.ioBytes == 0 || w.ioBytes % block != 0)
    return {"io_size", "expected a multiple of the media's block_size (" + std::to_string(block) + " B)"};
  if (w.ioBytes > np.mdtsBytes || w.ioBytes > kPage * (kPage / 8))
    return {"io_size", "expected at most the controller's mdts (" + std::to_string(np.mdtsBytes) +
                           " B) and what one PRP-list page covers (2MiB)"};
  if (w.queueDepth < 2 || w.queueDepth > np.maxQueueEntries)
    return {"queue_depth",
            "expected 2 .. the controller's max_queue_entries (" + std::to_string(np.maxQueueEntries) + ")"};
  if ((w.commands + 1) * (w.ioBytes / block) > np.media.capacityBlocks)
    return {"commands", "the requests' blocks exceed the namespace (capacity_blocks)"};
  if (w.path == NvmeViaNicPath::P2p) {
    const std::uint64_t need = pageUp(w.queueDepth * 64ull) + pageUp(w.queueDepth * 16ull) +
                               (w.ioBytes > 2 * kPage ? w.queueDepth * kPage : 0);
    if (need > np.cmbBytes)
      return {"queue_depth", "the queues and PRP lists of the p2p path need " + std::to_string(need) +
                                 " B of CMB; the nvme device's cmb_size is " + std::to_string(np.cmbBytes) +
                                 " B (lower queue_depth or raise cmb_size)"};
  }
  return {"", ""};
}

std::vector<PlaceableRegion> nvmeViaNicPlaceable(const NvmeViaNicParams& params, std::uint64_t bar0Bytes) {
  PlaceableRegion bar{"nvme_bar", params.process, bar0Bytes, {}};
  if (params.path == NvmeViaNicPath::Cpu) {
    bar.rule.memory = PlacementRule::Memory::None;
    bar.rule.what =
        "on the cpu path there is no nvme_bar (the queues are in host memory): place it on path: p2p";
    return {bar};
  }
  // The NIC reaches the doorbells (BAR 0 + 4 KiB) and the queues in the CMB through one mapping
  // of BAR 0 from its first byte (NicPeerQueueLayout::bar0).
  bar.rule.memory = PlacementRule::Memory::DeviceFile;
  bar.rule.device = params.nvme;
  bar.rule.fileFirst = 0;
  bar.rule.fileEnd = bar0Bytes;
  bar.rule.fileWhat = "BAR 0 from its first byte (the NIC finds the doorbells and the CMB's queues there)";
  bar.rule.what = "on the p2p path nvme_bar is " + params.nvme + "'s BAR 0";
  bar.rule.users = "the NIC writes the submission queue and the doorbells, reads the completion queue";
  return {bar};
}

const char* nvmeViaNicPathName(NvmeViaNicPath p) {
  return p == NvmeViaNicPath::P2p ? "p2p" : "cpu";
}

const char* nvmeViaNicOpName(NvmeViaNicOp o) {
  switch (o) {
    case NvmeViaNicOp::Write:
      return "write";
    case NvmeViaNicOp::Read:
      return "read";
    case NvmeViaNicOp::WriteRead:
      return "write_read";
  }
  return "?";
}

NvmeViaNic::NvmeViaNic(Platform& platform, const NvmeViaNicParams& params)
    : platform_(platform),
      params_(params),
      stats_("workload"),
      commands_(stats_.counter("commands", "commands", "requests whose CQE was consumed")),
      failed_(stats_.counter("commands_failed", "commands", "requests completed with an error status")),
      exact_(stats_.counter(
          "commands_exact", "commands",
          "completed requests whose data is byte-exact (media after a write, buffer after a read)")),
      dataBytes_(stats_.counter("data_bytes", "B", "data bytes moved by completed requests")),
      interrupts_(stats_.counter("cpu_interrupts", "interrupts",
                                 "CPU interrupts taken for the requests (receive and completion)")),
      handlerPs_(stats_.counter("cpu_handler_ps", "ps", "CPU time in the requests' interrupt handlers")),
      latency_(stats_.distribution("latency", "ps", "request arrival at the NIC -> its CQE consumed")) {
  nic_ = dynamic_cast<NicPlatformDevice*>(&platform.device(params.nic));
  nvme_ = dynamic_cast<NvmePlatformDevice*>(&platform.device(params.nvme));
  if (!nic_) fail("nic", "device \"" + params.nic + "\" is not a nic");
  if (!nvme_) fail("nvme", "device \"" + params.nvme + "\" is not an nvme");
  nicEndpoint_ = endpointOf(platform, params.nic);
  nvmeEndpoint_ = endpointOf(platform, params.nvme);
  const NvmeParams& np = nvme_->controller().params();
  const auto [key, why] = nvmeViaNicProblem(params, np);
  if (!key.empty()) fail(key, why);
  blocksPerIo_ = static_cast<std::uint32_t>(params.ioBytes / np.media.blockBytes);
  const std::vector<PlaceableRegion> placeable = nvmeViaNicPlaceable(params, np.barBytes);
  checkPlacement(platform, params.place, placeable);
  allocate(platform);
  cpu_ = std::make_unique<CpuAccess>(platform, busErrors_);
  if (params.path == NvmeViaNicPath::P2p) {
    mapBar0(placedMapping(platform, params.place, placeable.front()));
    makeImporter();
  }
  if (params.path == NvmeViaNicPath::Cpu) {
    InterruptControllerModule& irq = platform.interrupts();
    completionMsi_ = irq.allocateVector(params.nvme + ".q1", 0, [this](IrqContext&) { onCompletion(); });
    rxMsi_ = irq.allocateVector(params.nic + ".rx", 0, [this](IrqContext&) { onRx(); });
  }
  thread_ = std::make_unique<DriverThread>((std::string(nic_->nic().basename()) + "_ctl").c_str(), platform,
                                           [this](DriverThread&) { control(); });
}

NvmeViaNic::~NvmeViaNic() {
  if (nic_) nic_->nic().setQueueImporter(nullptr);
  importer_.reset();  // before the process exits (the platform's teardown)
  for (const Mapping& m : mappings_) platform_.dma().dmaUnmapPage(*m.dev, m.addr, m.bytes, m.dir);
}

std::uint64_t NvmeViaNic::allocPages(std::uint64_t bytes, const char* what) {
  unsigned order = 0;
  while ((kPage << order) < bytes) ++order;
  const std::optional<Pfn> f = platform_.physMem().allocFrame(order);
  if (!f) fail("commands", std::string("system RAM has no room for the ") + what);
  return paOf(*f).value();
}

NvmeViaNic::DmaBuf NvmeViaNic::allocDma(std::uint64_t bytes, const char* what, const std::string& endpoint,
                                        DmaDir dir) {
  DmaBuf b;
  b.pa = allocPages(bytes, what);
  const Device& dev = platform_.pci(endpoint);
  const DmaAddr a = platform_.dma().dmaMapPage(dev, Pa(b.pa), bytes, dir);
  if (platform_.dma().dmaMappingError(dev, a))
    fail("commands", std::string("the DMA API cannot map the ") + what + " (IOVA space or DMA mask)");
  mappings_.push_back({&dev, a, bytes, dir});
  b.dma = a.value();
  return b;
}

void NvmeViaNic::allocate(Platform& p) {
  const std::uint64_t n = params_.commands;
  const bool writeRead = params_.op == NvmeViaNicOp::WriteRead;
  NvmeMedia& media = nvme_->controller().media();
  buffers_.resize(n);
  requests_.resize(n);
  ios_.assign(n, NvmeViaNicIo{});
  for (std::uint64_t i = 0; i < n; ++i) {
    NicStorageRequest& r = requests_[i];
    r.write = params_.op == NvmeViaNicOp::Write || (writeRead && i < n / 2);
    const std::uint64_t k = writeRead && !r.write ? i - n / 2 : i;  // a read-back reads write k's blocks
    r.slba = k * blocksPerIo_;
    r.blocks = blocksPerIo_;
    Buffer& b = buffers_[i];
    b.mem = allocDma(params_.ioBytes, "data buffers", nvmeEndpoint_,
                     r.write ? DmaDir::ToDevice : DmaDir::FromDevice);
    b.data = pattern(params_.ioBytes, k + 1);
    r.dataAddr = b.mem.dma;  // what the command's PRPs carry
    if (r.write) p.physMem().write(Pa(b.mem.pa), b.data.data(), b.data.size());
    if (params_.op == NvmeViaNicOp::Read) media.write(r.slba, r.blocks, b.data.data());
  }
  // The queues are the driver's dma_alloc_coherent memory: mapped both ways for the controller.
  adminSq_ = allocDma(kPage, "admin queue", nvmeEndpoint_, DmaDir::Bidirectional);
  adminCq_ = allocDma(kPage, "admin queue", nvmeEndpoint_, DmaDir::Bidirectional);
  if (params_.path == NvmeViaNicPath::Cpu) {
    hostSq_ = allocDma(params_.queueDepth * 64ull, "submission queue", nvmeEndpoint_, DmaDir::Bidirectional);
    hostCq_ = allocDma(params_.queueDepth * 16ull, "completion queue", nvmeEndpoint_, DmaDir::Bidirectional);
    hostPrp_ = allocDma(params_.queueDepth * kPage, "PRP lists", nvmeEndpoint_, DmaDir::Bidirectional);
    rxRing_ = allocDma(n * nic::kRxRecordBytes, "receive ring", nicEndpoint_, DmaDir::FromDevice);
  }
}

void NvmeViaNic::control() {
  const std::uint64_t nvmeBar = platform_.pci(nvmeEndpoint_).bar(0).bus.value();
  NvmeDriverParams dp;
  dp.barBase = nvmeBar;
  dp.adminSqPa = adminSq_.pa;
  dp.adminCqPa = adminCq_.pa;
  dp.adminSqDma = adminSq_.dma;
  dp.adminCqDma = adminCq_.dma;
  dp.submitCostPs = params_.submitCostPs;
  dp.completionCostPs = params_.completionCostPs;
  driver_ = std::make_unique<NvmeDriver>(*cpu_, dp);
  if (!driver_->enable()) return;
  const bool p2p = params_.path == NvmeViaNicPath::P2p;
  if (p2p) {
    if (!setUpP2p(nvmeBar)) return;
  } else {
    driver_->setMsix(kVector, completionMsi_.address, completionMsi_.data);
    const NvmeQueueAddrs q{hostSq_.pa, hostCq_.pa, hostSq_.dma, hostCq_.dma};
    ready_ = driver_->createIoQueuePair(kQid, q, params_.queueDepth, kVector, true) == 0;
    if (!ready_) return;
  }
  const std::uint64_t t0 = now();
  for (std::size_t i = 0; i < requests_.size(); ++i) {
    requests_[i].atPs = t0 + (i + 1) * params_.intervalPs;
    ios_[i].arrivePs = requests_[i].atPs;
  }
  noteDramStart();
  Nic& nic = nic_->nic();
  if (!p2p) {
    NicRxNotifyParams rx;
    rx.ringAddr = rxRing_.dma;
    rx.entries = static_cast<std::uint32_t>(requests_.size());
    rx.msi = rxMsi_;
    nic.startReceiveNotify(rx, requests_);
    return;
  }
  nic.startQueueWriter(*queueWriter_, requests_);
  // The control thread sleeps until the NIC is done (the CPU takes no part in the I/O), then the
  // NIC's driver lets go of its mappings of the queue (the importer's stats stay for the report).
  while (!done()) cpu_->cpuWork(kPollPs);
  ImporterMirror& m = importer_->mirror();
  stats_
      .scalar("mirror_invalidations", "calls",
              "invalidate callbacks that zapped the NIC's mirror of BAR0 (p2p)")
      .set(double(m.stats().counterValue("invalidations")));
  stats_.scalar("mirror_device_faults", "faults", "device faults the NIC took on its mapping of BAR0 (p2p)")
      .set(double(importer_->stats().counterValue("device_faults")));
  m.unmapAll();
  grantsAfter_ = nvme_->exporter().exporter().grantCount();
}

void NvmeViaNic::mapBar0(const ProcessMapping* placed) {
  if (placed) {  // the process's device-file mapping of the controller, from BAR 0's first byte
    bar0_ = placed->start;
    return;
  }
  Mm& mm = platform_.process(params_.process);
  file_ = nvme_->openDeviceFile();
  const VaResult va =
      mm.mmap(Va(0), nvme_->controller().params().barBytes, PROT_READ | PROT_WRITE, MAP_SHARED, file_, 0);
  if (va.ok()) bar0_ = va.addr;  // else setUpP2p fails the bring-up, as it did when it mapped
}

void NvmeViaNic::makeImporter() {
  if (bar0_ == Va(0)) return;
  HmmDmaImporter imp;
  imp.device = &platform_.pci(nicEndpoint_);
  imp.dma = &platform_.dma();
  // A device fault maps the queue's pages in the CMB ahead (its SQ, CQ and PRP-list pages, as the
  // driver registered them: queueCmbPages), not one page per fault.
  ImporterDmaParams ip;
  ip.faultAheadPages = queueCmbPages();
  ip.faultAheadPastEnd = true;
  importer_ = std::make_unique<ImporterDma>(params_.nic + ".dma", platform_.process(params_.process), imp,
                                            platform_.fabric().engine(nicEndpoint_), bar0_,
                                            nvme_->controller().params().barBytes >> kPageShift, ip,
                                            &platform_.checker(), &platform_.directory());
  nic_->nic().setQueueImporter(importer_.get());  // the NIC's importer from now on (unused until started)
}

std::vector<WorkloadRegion> NvmeViaNic::regions() const {
  if (bar0_ == Va(0)) return {};
  return {{"nvme_bar", params_.process, bar0_, nvme_->controller().params().barBytes}};
}

std::uint64_t NvmeViaNic::queueCmbPages() const {
  return (pageUp(params_.queueDepth * 64ull) + pageUp(params_.queueDepth * 16ull)) / kPage +
         params_.queueDepth;
}

bool NvmeViaNic::setUpP2p(std::uint64_t nvmeBar) {
  const NvmeParams& np = nvme_->controller().params();
  const std::uint64_t sqOff = np.cmbOffset, cqOff = sqOff + pageUp(params_.queueDepth * 64ull);
  const std::uint64_t nicBar = platform_.pci(nicEndpoint_).bar(0).bus.value();
  driver_->setMsix(kVector, nicBar + nic::kMailbox, kVector);
  ready_ = driver_->createIoQueuePair(kQid, nvmeBar + sqOff, nvmeBar + cqOff, params_.queueDepth, kVector,
                                      true) == 0;
  if (!ready_) return false;
  // The process mapped the controller's BAR0 (special vma, mapBar0); the NIC's driver registered
  // it with the NIC's importer (makeImporter) and maps the queue's pages ahead.
  if (bar0_ == Va(0) || !importer_) return false;
  NicPeerQueueLayout l;
  l.bar0 = bar0_;
  l.peerBar0Bus = nvmeBar;
  l.qid = kQid;
  l.sqOffset = sqOff;
  l.cqOffset = cqOff;
  l.prpListOffset = cqOff + pageUp(params_.queueDepth * 16ull);
  l.entries = params_.queueDepth;
  l.blockBytes = np.media.blockBytes;
  queueWriter_ = importPeerQueue(*importer_, l);
  imported_ = queueWriter_.has_value();
  return imported_;
}

void NvmeViaNic::noteDramStart() {
  const StatsGroup& d = platform_.dram().stats();
  dramStart_ = d.counterValue("bytes_read") + d.counterValue("bytes_written");
}

void NvmeViaNic::onRx() {
  const std::uint64_t start = now();
  ++interrupts_;
  // NAPI-style: take every record that has arrived, in order.
  for (;;) {
    std::uint8_t raw[nic::kRxRecordBytes];
    cpu_->load(rxRing_.pa + std::uint64_t(rxNext_) * nic::kRxRecordBytes, raw, sizeof raw);
    const nic::RxRecord rec = nic::RxRecord::decode(raw);
    if (!rec.valid || rec.index != rxNext_) break;
    cpu_->cpuWork(params_.rxCostPs);
    ++rxNext_;
    if (inFlight_ + 1 < params_.queueDepth)
      submitCpu(rec.index);
    else
      backlog_.push_back(rec.index);
    if (rxNext_ == requests_.size()) break;
  }
  handlerPs_ += now() - start;
}

void NvmeViaNic::submitCpu(std::uint32_t index) {
  const NicStorageRequest& r = requests_[index];
  const std::uint64_t bytes = std::uint64_t(r.blocks) * nvme_->controller().params().media.blockBytes;
  const std::uint64_t first = std::min(bytes, kPage - r.dataAddr % kPage);
  std::uint64_t prp2 = 0;
  if (bytes - first > kPage) {
    // The PRP list in this SQ slot's page of host memory, written by CPU stores.
    std::vector<std::uint8_t> list(((bytes - first + kPage - 1) / kPage) * 8);
    for (std::uint64_t k = 0; k < list.size() / 8; ++k) {
      const std::uint64_t e = r.dataAddr + first + k * kPage;
      std::memcpy(&list[k * 8], &e, 8);
    }
    const std::uint64_t slot = std::uint64_t(driver_->queue(kQid).sqTail) * kPage;
    cpu_->store(hostPrp_.pa + slot, list.data(), list.size());
    prp2 = hostPrp_.dma + slot;
  } else if (bytes > first) {
    prp2 = r.dataAddr + first;
  }
  driver_->submit(kQid, nvme::Sqe::readWrite(r.write, static_cast<std::uint16_t>(index), r.slba, r.blocks,
                                             r.dataAddr, prp2));
  ++inFlight_;
}

void NvmeViaNic::onCompletion() {
  const std::uint64_t start = now();
  ++interrupts_;
  bool any = false;
  while (const std::optional<nvme::Cqe> c = driver_->reap(kQid)) {
    cpu_->cpuWork(params_.completionCostPs);
    completed(c->cid, c->status, now());
    --inFlight_;
    any = true;
  }
  if (any) driver_->ringCqHead(kQid);
  while (!backlog_.empty() && inFlight_ + 1 < params_.queueDepth) {
    submitCpu(backlog_.front());
    backlog_.pop_front();
  }
  handlerPs_ += now() - start;
}

void NvmeViaNic::completed(std::uint32_t index, std::uint16_t status, std::uint64_t atPs) {
  if (index >= ios_.size() || ios_[index].done) return;
  ios_[index].completePs = atPs;
  ios_[index].status = status;
  ios_[index].done = true;
  ++completedCount_;
}

bool NvmeViaNic::done() const {
  if (params_.path == NvmeViaNicPath::Cpu) return completedCount_ == ios_.size();
  const std::vector<NicIoRecord>& r = nic_->nic().ioRecords();
  return r.size() == ios_.size() &&
         std::all_of(r.begin(), r.end(), [](const NicIoRecord& x) { return x.done || x.abandoned; });
}

void NvmeViaNic::finish() {
  if (params_.path == NvmeViaNicPath::P2p)
    for (const NicIoRecord& r : nic_->nic().ioRecords())
      if (r.done) completed(r.cid, r.status, r.completePs);
  NvmeMedia& media = nvme_->controller().media();
  std::vector<std::uint64_t> lat;
  std::vector<std::uint8_t> got(params_.ioBytes);
  for (std::size_t i = 0; i < ios_.size(); ++i) {
    const NvmeViaNicIo& io = ios_[i];
    if (!io.done) continue;
    ++commands_;
    lat.push_back(io.completePs - io.arrivePs);
    latency_.sample(io.completePs - io.arrivePs);
    if (trace_)
      trace_->slice(TraceCategory::Dma, "workload.io",
                    std::string(requests_[i].write ? "write " : "read ") + std::to_string(i), io.arrivePs,
                    io.completePs - io.arrivePs);
    if (io.status != 0) {
      ++failed_;
      continue;
    }
    dataBytes_ += params_.ioBytes;
    const NicStorageRequest& r = requests_[i];
    if (r.write)
      media.read(r.slba, r.blocks, got.data());
    else
      platform_.physMem().read(Pa(buffers_[i].mem.pa), got.data(), got.size());
    if (got == buffers_[i].data)
      ++exact_;
    else
      mismatched_.push_back(i);
  }
  const std::uint64_t n = commands_.value();
  stats_.scalar("latency_p50", "ps", "median request latency").set(double(percentile(lat, 0.50)));
  stats_.scalar("latency_p99", "ps", "99th percentile request latency").set(double(percentile(lat, 0.99)));
  double iops = 0;
  if (n > 0) {
    std::uint64_t first = ~0ull, last = 0;
    for (const NvmeViaNicIo& io : ios_)
      if (io.done) {
        first = std::min(first, io.arrivePs);
        last = std::max(last, io.completePs);
      }
    if (last > first) iops = double(n) / (double(last - first) * 1e-12);
  }
  stats_.scalar("iops", "commands/s", "completed requests per second (first arrival to last completion)")
      .set(iops);
  stats_.scalar("cpu_ps_per_command", "ps", "CPU handler time per completed request")
      .set(n ? double(handlerPs_.value()) / double(n) : 0);
  const StatsGroup& d = platform_.dram().stats();
  const std::uint64_t dram = d.counterValue("bytes_read") + d.counterValue("bytes_written") - dramStart_;
  const std::uint64_t data = dataBytes_.value();
  queueBytes_ = dram > data ? dram - data : 0;
  stats_
      .scalar(
          "queue_system_memory_bytes", "B",
          "system-memory bytes of the I/O phase besides the data (request records, SQEs, PRP lists, CQEs)")
      .set(double(queueBytes_));
}

void NvmeViaNic::check(const std::string& at, std::vector<std::string>& failures) const {
  if (!ready_) {
    failures.push_back(at + "the NVMe controller did not come up with its I/O queue pair");
    return;
  }
  if (params_.path == NvmeViaNicPath::P2p && !imported_)
    failures.push_back(at + "the NIC could not map the queue in the controller's CMB");
  if (params_.path == NvmeViaNicPath::P2p) {
    const NicQueueError& e = nic_->nic().queueError();
    if (e.failed) {
      std::ostringstream o;
      o << at << "the NIC gave up on the queue at " << std::fixed << std::setprecision(2)
        << double(e.atPs) / 1e6 << " us: " << e.describe();
      failures.push_back(o.str());
    }
  }
  std::uint64_t notDone = 0, bad = 0;
  for (std::size_t i = 0; i < ios_.size(); ++i) {
    if (!ios_[i].done) {
      ++notDone;
    } else if (ios_[i].status != 0 && ++bad <= 8) {
      failures.push_back(at + "request " + std::to_string(i) + " completed with NVMe status " +
                         std::to_string(ios_[i].status));
    }
  }
  if (notDone)
    failures.push_back(at + std::to_string(ios_.size() - notDone) + " of " + std::to_string(ios_.size()) +
                       " requests completed");
  for (std::size_t k = 0; k < mismatched_.size() && k < 8; ++k) {
    const std::uint64_t i = mismatched_[k];
    failures.push_back(at + "request " + std::to_string(i) + " (" + (requests_[i].write ? "write" : "read") +
                       "): the data differs from what was sent");
  }
  if (mismatched_.size() > 8)
    failures.push_back(at + std::to_string(mismatched_.size() - 8) + " more requests with wrong data");
  if (busErrors_) failures.push_back(at + std::to_string(busErrors_) + " CPU accesses failed on the bus");
}

void NvmeViaNic::addStats(Platform& /*p*/, StatsRegistry& r) {
  r.add("workload", stats_);
  r.add("device." + params_.nic, nic_->nic().stats());
  r.add("device." + params_.nvme, nvme_->controller().stats());
  r.add("device." + params_.nvme + ".media", nvme_->controller().media().stats());
  if (importer_) {  // p2p: the NIC's importer over the process's mapping of BAR0
    r.add("device." + params_.nic + ".dma", importer_->stats());
    r.add("device." + params_.nic + ".mirror", importer_->mirror().stats());
  }
}

}  // namespace hmmsim
