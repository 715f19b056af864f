// Platform: the machine built from a PlatformDesc. See platform.h.
#include "models/platform/platform.h"

#include <sstream>

#include <tlm_utils/simple_initiator_socket.h>

#include "hmm/memremap.h"
#include "models/cpu_mmu/file.h"
#include "models/cpu_mmu/lookahead.h"
#include "models/pcie/iommu_topology.h"
#include "models/pcie/root_complex_module.h"
#include "models/pcie/topology_desc.h"
#include "sim/assert.h"
#include "sim/config.h"
#include "sim/trace.h"

namespace hmmsim {

namespace {
[[noreturn]] void fail(const std::string& key, const std::string& msg) {
  throw ConfigError("<platform>", 0, 0, key, msg);
}

/// The description as the builder applies it: host memory is the DRAM, timing-only reaches every
/// payload. Validated first: nothing is built from a bad description.
PlatformDesc applied(const PlatformDesc& d) {
  if (std::string e = d.check(); !e.empty()) fail("platform", e);
  PlatformDesc a = d;
  a.fabric.externalHostMemory = true;
  a.fabric.hostMemory.baseAddr = d.ram.ramBase.value();
  a.fabric.hostMemory.sizeBytes = d.ram.ramSize;
  if (d.timingOnly) {
    a.fabric.dma.timingOnly = true;
    a.dram.acceptNoData = true;
  }
  return a;
}

std::unique_ptr<Topology> enumerated(const TopologyDesc& d) {
  if (d.hostBridges.empty()) fail("topology", "a platform needs at least one host bridge");
  return buildTopology(d);
}
}  // namespace

/// Device-coherent memory's driver half as the platform places it: frees are counted (the
/// pages belong to whoever migrated into them; the platform hands out none itself).
class Platform::CoherentOps final : public DevPagemapOps {
 public:
  void folioFree(Pfn) override { ++frees; }
  std::uint64_t frees = 0;
};

/// The system-bus initiator of driver threads (driverAccess); also keeps the bus's target socket
/// bound when no CPU core is started.
class Platform::DriverPort final : public sc_core::sc_module {
 public:
  tlm_utils::simple_initiator_socket<DriverPort> out{"out"};
  explicit DriverPort(sc_core::sc_module_name n) : sc_module(n) {}
};

// A refused description throws from here. SystemC cannot take back what was registered before the
// throw: those processes stay, orphaned, under their names ("<platform>_irq.cpu0"). So after a
// refused platform the simulation is not started, and a later Platform in it takes another name
// (the same one draws W505 "object already exists", which fails a test case: catch_main.cpp).
Platform::Platform(const std::string& name, const PlatformDesc& desc, const DeviceRegistry& registry,
                   TraceSink* trace)
    : name_(name),
      desc_(applied(desc)),
      pm_(desc_.ram, name + ".phys_mem"),
      topo_(enumerated(desc_.topology)),
      fab_(name + "_fab", *topo_, desc_.fabric),
      dram_((name + "_dram").c_str(), desc_.dram, pm_),
      iommu_(name + ".iommu", desc_.iommu.iommu),
      dma_(name + ".dma", iommu_, desc_.iommu.dma),
      irq_((name + "_irq").c_str(), desc_.interrupts),
      p2pdma_(*topo_, desc_.p2pdma, Rng(desc_.seed), name + ".p2pdma"),
      mapper_(p2pdma_, dma_, name + ".p2p_dma"),
      checker_(violations_, [] { return sc_core::sc_time_stamp().value(); }),
      directory_(checker_),
      bus_((name + "_bus").c_str(), map_),
      driverPort_(std::make_unique<DriverPort>((name + "_driver").c_str())),
      coherentOps_(std::make_unique<CoherentOps>()),
      trace_(trace) {
  driverPort_->out.bind(bus_.tSocket);
  tlm_utils::tlm_quantumkeeper::set_global_quantum(psTime(desc_.quantumPs));
  lockdep_.setChecker(&violations_, [] { return sc_core::sc_time_stamp().value(); });
  blocker_.setLockdep(lockdep_);
  iommu_.setChecker(&violations_);
  // The root complex resolves upstream addresses through the IOMMU, except the MSI window
  // (interrupt messages are not DMA; the DMA API never hands out IOVAs there).
  fab_.router().setRcAddressResolver(
      [inner = iommuRcAddressResolver(iommu_, *topo_), irq = desc_.interrupts](
          const PciDev& requester, std::uint64_t addr, const TlpRouteAttrs& attrs) {
        if (addr >= irq.msiBase && addr - irq.msiBase < irq.msiBytes) return RcResolveResult{true, Pa(addr)};
        return inner(requester, addr, attrs);
      });
  fab_.router().setRcRefusalObserver([this](const RcRefusal& r) { onRcRefusal(r); });
  if (attachPciEndpoints(dma_, *topo_) != Errno::Ok)
    fail("iommu", "attaching the endpoints to the DMA API failed");
  wireInterrupts();
  if (trace_) wireTrace();
  buildAddressMap();
  for (const ProcessDesc& p : desc_.processes) {
    auto mm = std::make_unique<Mm>(pm_, name + "." + p.name, p.mm);
    mm->notifierSubscriptions().setBlocker(blocker_);
    processes_[p.name] = std::move(mm);
  }
  for (const DeviceMemoryDesc& m : desc_.deviceMemory) placeDeviceMemory(m);
  {
    // The devices made now look ahead if the platform does (lookahead.h: `hmmsim run` simulates to
    // the end, so a thread that looks ahead never passes a stop time).
    const LookaheadScope lookahead(desc_.lookahead);
    for (const DeviceDesc& d : desc_.devices) createDevice(d, registry);
  }
  for (const ProcessDesc& p : desc_.processes) mapProcessMemory(p);
}

void Platform::mapProcessMemory(const ProcessDesc& p) {
  Mm& mm = process(p.name);
  for (const MappingDesc& m : p.memory) {
    const std::string what = "process \"" + p.name + "\": mapping \"" + m.name + "\"";
    if (m.offset != 0 && m.kind != MapKind::DeviceFile)
      fail("processes",
           what + " (" + mapKindName(m.kind) + ") has an offset: only device-file mappings take one");
    if (m.offset % kPageSize != 0)
      fail("processes", what + ": offset " + std::to_string(m.offset) + " is not a multiple of 4 KiB");
    int flags = MAP_PRIVATE | MAP_ANONYMOUS;
    std::shared_ptr<File> file;
    switch (m.kind) {
      case MapKind::Anon:
        break;
      case MapKind::SharedAnon:
        flags = MAP_SHARED | MAP_ANONYMOUS;
        break;
      case MapKind::FilePrivate:
      case MapKind::FileShared:
        flags = m.kind == MapKind::FileShared ? MAP_SHARED : MAP_PRIVATE;
        file = tmpfile(pm_, m.bytes, p.name + "." + m.name);
        break;
      case MapKind::Hugetlb:
        flags |= MAP_HUGETLB | (m.hugePageBytes == (1ull << 30) ? MAP_HUGE_1GB : MAP_HUGE_2MB);
        break;
      case MapKind::DeviceFile:
        flags = MAP_SHARED;
        file = device(m.device).openDeviceFile();
        if (!file) fail("processes", "device \"" + m.device + "\" has no device file to map");
        break;
    }
    // A device file's mmap checks [offset, offset + bytes) against what the device exports (EINVAL).
    const VaResult r = mm.mmap(Va(0), m.bytes, m.prot, flags, file, m.offset);
    if (!r.ok())
      fail("processes", "process \"" + p.name + "\": mmap of \"" + m.name + "\" (" + mapKindName(m.kind) +
                            (m.offset ? " at offset " + std::to_string(m.offset) : std::string()) +
                            ") failed with " + errnoName(r.err));
    if (m.thp && mm.madvise(r.addr, m.bytes, MADV_HUGEPAGE) != Errno::Ok)
      fail("processes", "process \"" + p.name + "\": madvise(MADV_HUGEPAGE) of \"" + m.name + "\" failed");
    mappings_[{p.name, m.name}] = ProcessMapping{r.addr, m.bytes, m.kind, m.prot, m.device, m.offset};
  }
}

const ProcessMapping* Platform::mapping(const std::string& process, const std::string& mapping) const {
  auto it = mappings_.find({process, mapping});
  return it == mappings_.end() ? nullptr : &it->second;
}

void Platform::wireTrace() {
  iommu_.setTrace(trace_);
  irq_.setTrace(trace_);
  if (trace_->on(TraceCategory::PcieLink))
    for (const LinkDesc& l : desc_.topology.links) {
      linkTraces_.push_back(std::make_unique<LinkOccupancyTrace>(*trace_, "link." + l.down + ".up"));
      linkTraces_.push_back(std::make_unique<LinkOccupancyTrace>(*trace_, "link." + l.down + ".down"));
      fab_.uplink(l.down).setTrace(linkTraces_[linkTraces_.size() - 2].get(), linkTraces_.back().get());
    }
  for (const DeviceDesc& d : desc_.devices) {
    if (d.endpoint.empty() || !topo_->findDev(d.endpoint)) continue;
    PcieDmaEngine& engine = fab_.engine(d.endpoint);
    engine.setTimelineTrace(trace_);
    if (!trace_->on(TraceCategory::Dma)) continue;
    engine.setBurstObserver([t = trace_, track = "device." + d.name + ".dma"](const DmaBurstRecord& b) {
      std::ostringstream args;
      args << b.len << " B at 0x" << std::hex << b.addr;
      t->slice(TraceCategory::Dma, track, b.write ? "DMA write" : "DMA read", b.issuePs,
               b.donePs > b.issuePs ? b.donePs - b.issuePs : 0, args.str());
    });
  }
}

void Platform::flushTrace() {
  for (auto& l : linkTraces_) l->flush();
}

Platform::~Platform() {
  for (auto& d : devices_) d->beforeProcessExit();
  cores_.clear();
  for (auto& [n, mm] : processes_) mm->notifierSubscriptions().setBlocker(singleThreadBlocker());
  processes_.clear();
  while (!devices_.empty()) devices_.pop_back();  // reverse creation order
  for (DeviceMemory& m : deviceMemory_)
    if (m.pgmap) memunmapPages(pm_, *m.pgmap);  // Busy (pages still referenced) leaves it: the run ended
}

void Platform::wireInterrupts() {
  for (const PciHostBridge& hb : topo_->hostBridges()) {
    PcieRootComplexModule& rc = fab_.rootComplex(hb.name());
    IommuTranslationStage* inner = nullptr;
    if (iommu_.mode() != IommuMode::Off) {
      auto stage = std::make_unique<IommuTranslationStage>(name_ + "." + hb.name() + ".iommu", iommu_, &dma_);
      inner = stage.get();
      stages_[hb.name()] = std::move(stage);
    }
    msiStages_.push_back(std::make_unique<MsiPassStage>(desc_.interrupts, inner));
    rc.setTranslationStage(msiStages_.back().get());
    msiTargets_.push_back(std::make_unique<MsiTarget>((name_ + "_" + hb.name() + "_msi").c_str(),
                                                      desc_.interrupts, irq_, hostMemoryRequesters_));
    rc.memOut.bind(msiTargets_.back()->in);
    msiTargets_.back()->toMemory.bind(dram_.tSocket);
  }
}

void Platform::onRcRefusal(const RcRefusal& r) {
  ImporterDma* imp = directory_.issuingPeer(r.requester->bdf());
  if (!imp) return;  // not a peer burst of an importer (a stray DMA: the IOMMU's business)
  std::ostringstream why;
  why << "Unsupported Request from host bridge " << r.hostBridge->name() << ": ";
  if (r.reason == RcRefusalReason::P2pNotForwarded) {
    why << "p2p not allowed through it (";
    if (r.peerHostBridge && r.peerHostBridge != r.hostBridge)
      why << "it or " << r.peerHostBridge->name() << " forwards no peer-to-peer)";
    else
      why << "it forwards no peer-to-peer)";
  } else if (r.reason == RcRefusalReason::NoUpstreamForwarding) {
    why << "root port " << r.port->name()
        << " got a request for its own secondary side back from below (redirected by ACS) and has no ACS "
           "Upstream Forwarding";
  } else {
    why << "its IOMMU has no translation for the address in the requester's domain";
  }
  // The peer whose BAR the address is (the bus address a misbehaving exporter handed out).
  for (PciDev* f : topo_->functionsInBdfOrder())
    for (int b = 0; b < kPciNumBars; ++b) {
      const PciBar& bar = f->bar(b);
      if (!bar.isMem() || !bar.assigned || r.addr < bar.bus.value() || r.addr - bar.bus.value() >= bar.size)
        continue;
      const P2pMapType t = mapper_.mapType(*f, imp->device());
      why << "; the address is " << f->name() << " BAR " << b << "'s bus address, p2pdma map type "
          << p2pMapTypeName(t);
      if (t != P2pMapType::BusAddr) why << " ignored (a bus address is only valid with BUS_ADDR)";
    }
  checker_.unsupportedRequest(imp->device(), r.addr, why.str());
}

void Platform::buildAddressMap() {
  auto add = [this](const AddressRange& r) {
    if (std::string e = map_.add(r); !e.empty()) fail("topology", e);
  };
  add(AddressRange{desc_.ram.ramBase, desc_.ram.ramSize, 0, desc_.ram.ramBase.value(), "dram"});
  bus_.iSocket.bind(dram_.tSocket);
  unsigned target = 1;
  for (const PciHostBridge& hb : topo_->hostBridges()) {
    for (const HostWindow* w : {&hb.mem(), &hb.pref()})
      if (w->size) add(AddressRange{w->cpuBase, w->size, target, w->busBase.value(), hb.name() + " mmio"});
    bus_.iSocket.bind(fab_.rootComplex(hb.name()).hostIn);
    ++target;
  }
}

void Platform::placeDeviceMemory(const DeviceMemoryDesc& m) {
  const std::string key = "deviceMemory." + m.endpoint;
  PciDev* dev = topo_->findDev(m.endpoint);
  if (!dev) fail(key, "no endpoint named \"" + m.endpoint + "\"");
  if (!fab_.hasBarMemory(m.endpoint)) fail(key, "the endpoint has no memory BAR");
  PcieMemoryTarget& target = fab_.barMemory(m.endpoint);
  const Pa base = pciResourceStart(*dev, m.bar);
  const std::uint64_t bytes = pciResourceLen(*dev, m.bar);
  if (bytes == 0 || pciBusAddress(*dev, m.bar).value() != target.params().baseAddr) {
    std::ostringstream o;
    o << "BAR " << m.bar << " is not the endpoint's memory BAR (the fabric models its largest BAR)";
    fail(key, o.str());
  }
  DeviceMemory placed{m.endpoint, nullptr};
  if (m.kind == DeviceMemoryKind::Coherent) {
    placed.pgmap = std::make_unique<DevPagemap>();
    placed.pgmap->type = MemoryType::DeviceCoherent;
    placed.pgmap->ops = coherentOps_.get();
    placed.pgmap->owner = placed.pgmap.get();
    if (memremapPagesAt(pm_, *placed.pgmap, base, bytes >> kPageShift) != Errno::Ok)
      fail(key, "memremap_pages at the BAR failed: " + pm_.checkDeviceRangeAt(base, bytes >> kPageShift));
  } else if (pm_.addDeviceRangeAt(base, bytes >> kPageShift, nullptr, nullptr) != Errno::Ok) {
    fail(key, "device memory at the BAR: " + pm_.checkDeviceRangeAt(base, bytes >> kPageShift));
  }
  target.setBacking(&pm_, base.value(), bytes);
  deviceMemory_.push_back(std::move(placed));
}

void Platform::createDevice(const DeviceDesc& d, const DeviceRegistry& registry) {
  const std::string key = "devices." + d.name;
  if (d.name.empty() || d.name.find('.') != std::string::npos)
    fail(key,
         "a device's name names its SystemC module and its stats (device.<name>.*): give one without '.'");
  if (!registry.has(d.type)) {
    std::ostringstream o;
    o << "unknown device type \"" << d.type << "\" (known:";
    for (const std::string& t : registry.types()) o << " " << t;
    o << ")";
    fail(key, o.str());
  }
  PciDev* pci = nullptr;
  if (!d.endpoint.empty()) {
    pci = topo_->findDev(d.endpoint);
    if (!pci) fail(key, "no endpoint named \"" + d.endpoint + "\"");
  }
  DeviceContext ctx{d.name,
                    &d.params,
                    pm_,
                    *topo_,
                    pci,
                    pci ? &fab_.engine(d.endpoint) : nullptr,
                    pci && fab_.hasBarMemory(d.endpoint) ? &fab_.barMemory(d.endpoint) : nullptr,
                    iommu_,
                    dma_,
                    mapper_,
                    checker_,
                    directory_,
                    &irq_,
                    [this](const std::string& p) -> Mm& { return process(p); },
                    trace_,
                    name_ + "_" + d.name};  // as the platform's own modules: "<platform>_dram"
  std::unique_ptr<PlatformDevice> dev = registry.create(d.type, ctx);
  HMMSIM_ASSERT(dev, "device type " << d.type << " returned no device for " << d.name);
  devices_.push_back(std::move(dev));
}

CpuCore& Platform::startCpu(const std::string& cpu, CpuProgram program) {
  const CpuDesc* c = nullptr;
  for (const CpuDesc& x : desc_.cpus)
    if (x.name == cpu) c = &x;
  HMMSIM_ASSERT(c, "no CPU named " << cpu << " in the platform description");
  HMMSIM_ASSERT(!cores_.count(cpu), "CPU " << cpu << " started twice");
  auto core = std::make_unique<CpuCore>((name_ + "_" + cpu).c_str(), c->params, process(c->process),
                                        std::move(program));
  core->iSocket.bind(bus_.tSocket);
  core->setTrace(trace_);
  return *(cores_[cpu] = std::move(core));
}

bool Platform::driverAccess(bool write, Pa pa, std::uint8_t* data, std::uint64_t len,
                            sc_core::sc_time& delay) {
  tlm::tlm_generic_payload gp;
  gp.set_command(write ? tlm::TLM_WRITE_COMMAND : tlm::TLM_READ_COMMAND);
  gp.set_address(pa.value());
  gp.set_data_ptr(data);
  gp.set_data_length(static_cast<unsigned>(len));
  gp.set_streaming_width(static_cast<unsigned>(len));
  gp.set_response_status(tlm::TLM_INCOMPLETE_RESPONSE);
  driverPort_->out->b_transport(gp, delay);
  return gp.is_response_ok();
}

IommuTranslationStage* Platform::iommuStage(const std::string& hb) {
  auto it = stages_.find(hb);
  return it == stages_.end() ? nullptr : it->second.get();
}

Mm& Platform::process(const std::string& name) {
  auto it = processes_.find(name);
  HMMSIM_ASSERT(it != processes_.end(), "no process named " << name);
  return *it->second;
}

PciDev& Platform::pci(const std::string& endpoint) {
  PciDev* d = topo_->findDev(endpoint);
  HMMSIM_ASSERT(d, "no endpoint named " << endpoint);
  return *d;
}

PlatformDevice& Platform::device(const std::string& name) {
  for (auto& d : devices_)
    if (d->name() == name) return *d;
  HMMSIM_ASSERT(false, "no device named " << name);
  __builtin_unreachable();
}

CpuCore& Platform::cpu(const std::string& name) {
  auto it = cores_.find(name);
  HMMSIM_ASSERT(it != cores_.end(), "CPU " << name << " was not started");
  return *it->second;
}

DevPagemap* Platform::coherentMemory(const std::string& endpoint) {
  for (DeviceMemory& m : deviceMemory_)
    if (m.endpoint == endpoint) return m.pgmap.get();
  return nullptr;
}

}  // namespace hmmsim
