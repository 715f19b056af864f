// The NIC's NVMe queue writer (RFC workload 1) obeys invalidations of the process's special-vma
// mapping of the controller's BAR0: it reaches the queue through its importer (device MMU, device
// faults, the checker), so after an MMU_NOTIFY_CLEAR of the mapping or the exporter's revoke it
// takes a device fault and maps again before its next SQE write, and a NIC driver that ignores
// invalidations is caught by the checker. A queue access whose fault cannot map for now (the
// exporter resetting its BAR) is retried until it maps, each command delivered exactly once; one
// that can never map (the mapping is gone) puts the queue writer in error, every command not
// completed abandoned and reported (a command whose CQE it read is completed, even when the CQ
// doorbell after it cannot map). Assertions after sc_start().
#include <catch2/catch.hpp>

#include <functional>
#include <string>
#include <vector>

#include <systemc>

#include "hmm/importer_mirror.h"
#include "models/cpu_mmu/mm.h"
#include "models/devices/common/importer_dma.h"
#include "models/devices/nic/nic_device.h"
#include "models/devices/nvme/nvme.h"
#include "models/devices/nvme/nvme_device.h"
#include "models/platform/builtin_devices.h"
#include "models/platform/exporter_events.h"
#include "models/platform/nvme_via_nic.h"
#include "models/platform/platform.h"
#include "tests/unit/devices/nic_nvme_platform_desc.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {

/// Once the NIC has written `afterSqes` SQEs, runs `event` once (from an SC_THREAD, at
/// synchronised time), recording the NIC's SQE count and its importer's device faults then.
class AfterSqes : public sc_core::sc_module {
 public:
  SC_HAS_PROCESS(AfterSqes);
  AfterSqes(sc_core::sc_module_name n, Nic& nic, std::uint64_t afterSqes, std::function<void()> event)
      : sc_module(n), nic_(nic), after_(afterSqes), event_(std::move(event)) {
    SC_THREAD(run);
  }
  std::uint64_t sqesAtEvent = 0, faultsAtEvent = 0;
  bool fired = false;

 private:
  void run() {
    while (nic_.stats().counterValue("sqes_written") < after_) wait(sc_core::sc_time(1, sc_core::SC_US));
    sqesAtEvent = nic_.stats().counterValue("sqes_written");
    faultsAtEvent = nic_.importer()->stats().counterValue("device_faults");
    event_();
    fired = true;
  }
  Nic& nic_;
  std::uint64_t after_;
  std::function<void()> event_;
};

/// Every command of the workload completed with the bytes it should have.
void requireExact(NvmeViaNic& w) {
  w.finish();
  REQUIRE(w.imported());
  std::vector<std::string> failures;
  w.check("", failures);
  CHECK(failures.empty());
  CHECK(w.stats().counterValue("commands_exact") == 8);
}

}  // namespace

TEST_CASE("nic queue writer: a CLEAR of its BAR0 mapping makes it fault and map before the next SQE") {
  Platform p("m", nicNvmeDesc(), builtinDevices());
  Nic& nic = p.deviceAs<NicPlatformDevice>("nic").nic();
  NvmeViaNic w(p, nicNvmeWorkload(NvmeViaNicPath::P2p));
  const WorkloadRegion bar = w.regions().at(0);
  Mm& mm = p.process("proc0");
  ImporterDma& dma = *nic.importer();  // the NIC's importer exists with the workload
  std::uint64_t mapsAtEvent = 0;
  AfterSqes ev("ev", nic, 3, [&] {
    mapsAtEvent = dma.mirror().stats().counterValue("commits");
    mm.notifyRange(MmuNotifierEvent::Clear, bar.start, bar.start + bar.bytes);
  });
  w.start();
  sc_core::sc_start();
  REQUIRE(ev.fired);
  requireExact(w);
  CHECK(ev.sqesAtEvent == 3);
  CHECK(ev.faultsAtEvent == 0);  // the queue was mapped ahead
  // After the CLEAR every access faults its page back, each fault mapping the queue's CMB pages
  // ahead from there: the third command's CQE read (the CQ page and the PRP-list pages above it,
  // read-only), its CQ head doorbell (BAR0's doorbell page), then the fourth command's PRP-list
  // write (its page was mapped read-only) and its SQE (the SQ page, below the CQ); the SQ
  // doorbell is on the page mapped again already. Each before the access reached the controller.
  CHECK(dma.stats().counterValue("device_faults") == 4);
  CHECK(dma.mirror().stats().counterValue("invalidations") == 1);
  CHECK(dma.mirror().stats().counterValue("commits") > mapsAtEvent);  // it mapped again
  CHECK(nic.stats().counterValue("dma_errors") == 0);
  CHECK(nic.stats().counterValue("queue_faults") == 0);
  CHECK(p.violations().ok());
}

TEST_CASE("nic queue writer: the exporter's revoke is obeyed, the NIC re-maps and every command lands") {
  Platform p("m", nicNvmeDesc(), builtinDevices());
  Nic& nic = p.deviceAs<NicPlatformDevice>("nic").nic();
  P2pExporter& x = p.deviceAs<NvmePlatformDevice>("nvme").exporter().exporter();
  NvmeViaNic w(p, nicNvmeWorkload(NvmeViaNicPath::P2p));
  ImporterDma& dma = *nic.importer();
  ExporterEventResult revoked;
  std::uint64_t grantsAfterRevoke = ~0ull;
  AfterSqes ev("ev", nic, 5, [&] {
    revoked = revokeImporters(x);
    grantsAfterRevoke = x.grantCount();
  });
  w.start();
  sc_core::sc_start();
  REQUIRE(ev.fired);
  requireExact(w);
  CHECK(revoked.err == Errno::Ok);
  CHECK(revoked.pagesRevoked > 0);
  CHECK(revoked.pagesPinned == 0);
  CHECK(grantsAfterRevoke == 0);  // the NIC gave every p2p mapping back before the revoke returned
  CHECK(dma.stats().counterValue("device_faults") == 4);  // as after a CLEAR: CQE, CQ doorbell, PRP, SQE
  CHECK(w.grantsAfterRelease() == 0);
  CHECK(p.violations().ok());
}

TEST_CASE("nic queue writer: a NIC driver that ignores invalidations is reported by the checker") {
  Platform p("m", nicNvmeDesc(), builtinDevices());
  Nic& nic = p.deviceAs<NicPlatformDevice>("nic").nic();
  NvmeViaNic w(p, nicNvmeWorkload(NvmeViaNicPath::P2p));
  const WorkloadRegion bar = w.regions().at(0);
  Mm& mm = p.process("proc0");
  ImporterDma* dma = p.device("nic").importerDma();  // what a script's `misbehave` switches
  REQUIRE(dma == nic.importer());
  dma->mirror().setMisbehaviour(ImporterMisbehaviour::IgnoreInvalidations);
  AfterSqes ev("ev", nic, 3,
               [&] { mm.notifyRange(MmuNotifierEvent::Clear, bar.start, bar.start + bar.bytes); });
  w.start();
  sc_core::sc_start();
  REQUIRE(ev.fired);
  requireExact(w);  // the BAR did not move: the data is right, only the checker sees the breach
  CHECK(dma->stats().counterValue("device_faults") == 0);
  const std::size_t stale = p.violations().count(CheckRule::StaleTranslation);
  CHECK(stale > 0);
  CHECK(stale == p.violations().violations().size());
  CHECK(p.violations().violations().front().device.find("nic") != std::string::npos);
}

TEST_CASE("nic queue writer: accesses refused during the exporter's reset are retried, each command once") {
  Platform p("m", nicNvmeDesc(), builtinDevices());
  Nic& nic = p.deviceAs<NicPlatformDevice>("nic").nic();
  NvmeController& nvme = p.deviceAs<NvmePlatformDevice>("nvme").controller();
  P2pBarManager& bar = p.deviceAs<NvmePlatformDevice>("nvme").exporter().exporter().bar();
  NvmeViaNic w(p, nicNvmeWorkload(NvmeViaNicPath::P2p));
  ImporterDma& dma = *nic.importer();
  std::uint64_t revoked = 0;
  // The controller's BAR is reset for 400 us (every window torn down, maps fail with EIO) while
  // commands keep arriving every 150 us: the NIC's accesses fault, are refused, back off, retry.
  AfterSqes ev("ev", nic, 3, [&] {
    revoked = bar.resetBegin().pagesRevoked;
    sc_core::wait(sc_core::sc_time(400, sc_core::SC_US));
    bar.resetEnd();
  });
  w.start();
  sc_core::sc_start();
  REQUIRE(ev.fired);
  requireExact(w);  // on the old code the refused SQE writes were dropped and their doorbells rung
  CHECK(revoked > 0);
  const std::uint64_t refused = nic.stats().counterValue("queue_faults");
  CHECK(refused > 2);  // the CQE read, the next SQE: each refused until the reset ended
  CHECK(nic.stats().counterValue("queue_retries") == refused);
  CHECK(nic.stats().counterValue("queue_gave_up") == 0);
  CHECK(nic.stats().counterValue("commands_abandoned") == 0);
  CHECK_FALSE(nic.queueError().failed);
  // Exactly once: 8 SQEs written, 8 SQ doorbells, and the controller ran 4 writes and 4 reads.
  CHECK(nic.stats().counterValue("sqes_written") == 8);
  CHECK(nvme.stats().counterValue("writes") == 4);
  CHECK(nvme.stats().counterValue("reads") == 4);
  CHECK(dma.stats().counterValue("device_faults") == refused + 4);  // each refusal was a fault
  CHECK(nic.stats().counterValue("dma_errors") == 0);  // a refused try that was retried is no error
  CHECK(p.violations().ok());
}

TEST_CASE("nic queue writer: with no retries left it gives up on a refused access and reports it") {
  PlatformDesc d = nicNvmeDesc();
  NicParams np;
  np.queueRetryLimit = 2;
  for (DeviceDesc& dev : d.devices)
    if (dev.name == "nic") dev.params = np;
  Platform p("m", d, builtinDevices());
  Nic& nic = p.deviceAs<NicPlatformDevice>("nic").nic();
  NvmeController& nvme = p.deviceAs<NvmePlatformDevice>("nvme").controller();
  P2pBarManager& bar = p.deviceAs<NvmePlatformDevice>("nvme").exporter().exporter().bar();
  NvmeViaNic w(p, nicNvmeWorkload(NvmeViaNicPath::P2p));
  AfterSqes ev("ev", nic, 3, [&] { bar.resetBegin(); });  // never ends
  w.start();
  sc_core::sc_start();  // ends: the NIC does not wait for commands it abandoned
  REQUIRE(ev.fired);
  w.finish();
  const NicQueueError& e = nic.queueError();
  REQUIRE(e.failed);
  CHECK(e.retries == 2);
  CHECK(e.p2pError == Errno::Io);
  CHECK(nic.stats().counterValue("queue_retries") == 2);
  CHECK(nic.stats().counterValue("queue_gave_up") == 1);
  // Commands 4..8 were never submitted; none reached the controller twice or half written.
  CHECK(nic.stats().counterValue("sqes_written") == 3);
  CHECK(nvme.stats().counterValue("writes") + nvme.stats().counterValue("reads") <= 3);
  const std::uint64_t abandoned = nic.stats().counterValue("commands_abandoned");
  CHECK(abandoned >= 5);
  std::uint64_t done = 0;
  for (const NicIoRecord& io : nic.ioRecords()) {
    CHECK(io.done != io.abandoned);
    done += io.done ? 1 : 0;
  }
  CHECK(done + abandoned == 8);
  std::vector<std::string> failures;
  w.check("", failures);
  REQUIRE_FALSE(failures.empty());
  CHECK(failures.front().find("the NIC gave up on the queue") != std::string::npos);
  CHECK(failures.front().find("EIO (the exporter refused the p2p map) after 2 retries") != std::string::npos);
  CHECK(p.violations().ok());
}

TEST_CASE("nic queue writer: a BAR0 mapping gone (munmap) is a genuine EFAULT: no retry, reported") {
  Platform p("m", nicNvmeDesc(), builtinDevices());
  Nic& nic = p.deviceAs<NicPlatformDevice>("nic").nic();
  NvmeViaNic w(p, nicNvmeWorkload(NvmeViaNicPath::P2p));
  const WorkloadRegion bar = w.regions().at(0);
  Mm& mm = p.process("proc0");
  Errno unmapped = Errno::Inval;
  AfterSqes ev("ev", nic, 5, [&] { unmapped = mm.munmap(bar.start, bar.bytes); });
  w.start();
  sc_core::sc_start();
  REQUIRE(ev.fired);
  REQUIRE(unmapped == Errno::Ok);
  w.finish();
  const NicQueueError& e = nic.queueError();
  REQUIRE(e.failed);
  CHECK(e.mapStatus == HmmStatus::Fault);
  CHECK(e.p2pError == Errno::Ok);
  CHECK(e.retries == 0);
  CHECK(nic.stats().counterValue("queue_retries") == 0);
  CHECK(nic.stats().counterValue("queue_gave_up") == 1);
  CHECK(nic.stats().counterValue("sqes_written") == 5);
  CHECK(nic.stats().counterValue("commands_abandoned") == e.abandoned);
  CHECK(e.abandoned >= 3);
  std::vector<std::string> failures;
  w.check("", failures);
  REQUIRE_FALSE(failures.empty());
  CHECK(failures.front().find(
            "could not be mapped: EFAULT (no mapping there: the vma is gone) after 0 retries") !=
        std::string::npos);
  CHECK(p.violations().ok());
}

TEST_CASE("nic queue writer: a CQ doorbell it cannot map leaves the command whose CQE it read done") {
  // The doorbell page goes (munmap of just that page) after the last SQ doorbell: the last
  // command's CQE (in the CMB, still mapped) is read, then the CQ head doorbell cannot map. The
  // command completed -- its CQE was read -- so it is done, not abandoned.
  Platform p("m", nicNvmeDesc(), builtinDevices());
  Nic& nic = p.deviceAs<NicPlatformDevice>("nic").nic();
  NvmeViaNic w(p, nicNvmeWorkload(NvmeViaNicPath::P2p));
  const WorkloadRegion bar = w.regions().at(0);
  Mm& mm = p.process("proc0");
  Errno unmapped = Errno::Inval;
  AfterSqes ev("ev", nic, 8, [&] { unmapped = mm.munmap(bar.start + kPageSize, kPageSize); });
  w.start();
  sc_core::sc_start();
  REQUIRE(ev.fired);
  REQUIRE(unmapped == Errno::Ok);
  w.finish();
  const NicQueueError& e = nic.queueError();
  REQUIRE(e.failed);
  CHECK(e.access == "CQ doorbell");
  CHECK(e.mapStatus == HmmStatus::Fault);
  CHECK(nic.stats().counterValue("doorbells_rung") == 8 + 7);  // 8 SQ tails, 7 CQ heads
  CHECK(nic.stats().counterValue("cqes_seen") == 8);
  CHECK(e.abandoned == 0);
  CHECK(nic.stats().counterValue("commands_abandoned") == 0);
  for (const NicIoRecord& io : nic.ioRecords()) {
    CHECK(io.done);
    CHECK_FALSE(io.abandoned);
  }
  CHECK(p.violations().ok());
}
