#include "models/cpu_mmu/cpu_mmu_params.h"

#include "models/cpu_mmu/huge_memory.h"

namespace hmmsim {

namespace {
constexpr std::uint64_t kTiB = 1ull << 40;
constexpr std::uint64_t kSecondPs = 1'000'000'000'000ull;
}  // namespace

const ParamTable<PhysMemParams>& physMemParamTable() {
  static const ParamTable<PhysMemParams> table = [] {
    ParamTable<PhysMemParams> t("phys_mem", "system RAM: its size and where it starts (PhysMemParams)");
    t.bytes("ram", &PhysMemParams::ramSize, "size of system RAM, a multiple of 2 MiB", 2ull << 20, 8 * kTiB);
    t.custom({"ram_base", ParamType::Bytes, "bytes", "0B",
              "physical address of the first byte of RAM, 2 MiB aligned", "0B .. 4PiB"},
             [](PhysMemParams& p, const ConfigNode& n) { p.ramBase = Pa(n.asBytes()); });
    t.check([](const PhysMemParams& p) { return p.check(); });
    return t;
  }();
  return table;
}

const ParamTable<MmParams>& mmParamTable() {
  static const ParamTable<MmParams> table = [] {
    ParamTable<MmParams> t("mm", "a process's address space (MmParams)");
    t.custom({"thp", ParamType::Choice, "", thpPolicyName(MmParams().thp.enabled),
              "transparent_hugepage/enabled for anonymous faults", "always, madvise, never"},
             [](MmParams& p, const ConfigNode& n) {
               const std::string s = n.asChoice({"always", "madvise", "never"});
               p.thp.enabled = s == "always"    ? ThpPolicy::Always
                               : s == "madvise" ? ThpPolicy::Madvise
                                                : ThpPolicy::Never;
             });
    t.custom({"thp_zero_page", ParamType::Bool, "", MmParams().thp.useZeroPage ? "true" : "false",
              "transparent_hugepage/use_zero_page: read faults map the huge zero page", ""},
             [](MmParams& p, const ConfigNode& n) { p.thp.useZeroPage = n.asBool(); });
    t.boolean("thp_align_anon", &MmParams::thpAlignAnon, "align anonymous mappings of >= 2 MiB to 2 MiB");
    t.integer("hugetlb_pages", &MmParams::hugetlbPages, "pages", "2 MiB hugetlb pool for MAP_HUGETLB", 0,
              1 << 20);
    t.integer("hugetlb_pages_1g", &MmParams::hugetlbPages1G, "pages", "1 GiB hugetlb pool", 0, 1 << 12);
    t.bytes("rlimit_memlock", &MmParams::rlimitMemlock, "RLIMIT_MEMLOCK: the most mlock may lock", 0,
            64 * kTiB);
    t.boolean("cap_ipc_lock", &MmParams::capIpcLock, "CAP_IPC_LOCK: RLIMIT_MEMLOCK does not apply");
    t.bytes("rlimit_stack", &MmParams::rlimitStack, "RLIMIT_STACK: the most a stack vma grows to", 4096,
            kTiB);
    t.bytes("stack_guard_gap", &MmParams::stackGuardGap, "gap kept below a growing stack", 0, 1ull << 30);
    t.bytes("fault_around", &MmParams::faultAroundBytes, "fault_around_bytes for file read faults", 0,
            2ull << 20);
    return t;
  }();
  return table;
}

const ParamTable<DramParams>& dramParamTable() {
  static const ParamTable<DramParams> table = [] {
    ParamTable<DramParams> t("dram",
                             "the DRAM timing model: channels, interleave, bandwidth, latency (DramParams)");
    t.integer("channels", &DramParams::channels, "channels", "number of channels", 1, 64);
    t.bytes("interleave", &DramParams::interleaveBytes, "channel interleave granule, a power of two", 64,
            1ull << 30);
    t.bitrate("channel_bandwidth", &DramParams::channelBandwidthBps, "data bandwidth of one channel");
    t.duration("latency", &DramParams::latencyPs, "access latency added once per request", 0, kSecondPs);
    t.boolean("store_data", &DramParams::storeData, "keep payloads (false: timing only)");
    t.check([](const DramParams& p) { return p.check(); });
    return t;
  }();
  return table;
}

const ParamTable<CpuCoreParams>& cpuCoreParamTable() {
  static const ParamTable<CpuCoreParams> table = [] {
    ParamTable<CpuCoreParams> t("cpu_core", "a CPU core running a process's program (CpuCoreParams)");
    t.duration("fault_cost", &CpuCoreParams::faultCostPs, "page-fault entry/exit and handle_mm_fault", 0,
               kSecondPs);
    t.duration("tlb_miss_cost", &CpuCoreParams::tlbMissCostPs, "hardware page walk", 0, kSecondPs);
    t.duration("syscall_cost", &CpuCoreParams::syscallCostPs, "system call entry/exit and its kernel work", 0,
               kSecondPs);
    t.duration("tlb_shootdown_cost", &CpuCoreParams::tlbShootdownCostPs, "one TLB flush of a notifier round",
               0, kSecondPs);
    t.duration("tlb_hit_cost", &CpuCoreParams::tlbHitCostPs, "a TLB hit, per page chunk accessed", 0,
               kSecondPs);
    t.boolean("walk_through_memory", &CpuCoreParams::walkThroughMemory,
              "page walks read their entries through memory");
    return t;
  }();
  return table;
}

}  // namespace hmmsim
