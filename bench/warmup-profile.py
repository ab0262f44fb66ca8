#!/usr/bin/env python3
"""bench/warmup-profile.py -- where ours' vCPU thread spends the first ms after RESUME.

Under TCG a new QEMU process starts with an empty translation cache: after RESUME its
vCPU thread translates the guest's code again before it runs it.  This splits the
vCPU thread's cpu-clock samples (perf, CLOCK_MONOTONIC, so they line up with the
bench's QMP event times) into translating, looking up translated blocks, the softmmu
and MMIO paths, running translated guest code, the kernel and the rest, for two
windows of W seconds per run of an fd-handover variant:

  source steady        the source, from 0.5 s before its STOP
  target after RESUME  the target, from its RESUME

Only our build has symbols (Debian's QEMU is stripped), so only ours' runs are split;
the source and the target run the same binary, which makes the two windows comparable.

  perf record -a -g -k CLOCK_MONOTONIC -e cpu-clock -F 1000 -o P.data -- \\
      bench/upgrade --runs 2 --variants fd-handover-vufs,stock-vufs --json P.json ...
  bench/warmup-profile.py P.data P.json [W=0.05]
"""
import collections
import json
import re
import subprocess
import sys

CLASSES = (
    ("translate", re.compile(
        r"^(tcg_|liveness|la_|i386_tr|gen_|disas|translator_|tb_gen_code|fold_|"
        r"reachable_code|temp_|x86_ld.*code|setjmp_gen_code|tb_link_page|tb_page|page_|"
        r"init_ts_info|finish_folding|copy_propagate|remove_|do_constant|finish_bb)")),
    ("TB lookup", re.compile(
        r"^(qht_|tb_htable_lookup|tb_lookup|helper_lookup_tb_ptr|tb_cmp|tb_jmp|"
        r"cpu_get_tb_cpu_state|tb_add_jump)")),
    ("softmmu/MMIO", re.compile(
        r"^(tlb_|probe_access|helper_(ld|st|le|be)|do_(ld|st)|mmu_|get_physical_address|"
        r"x86_cpu_tlb_fill|cpu_(ld|st)|io_|memory_region_|address_space_|flatview_|"
        r"int_ld|int_st)")),
)
HEADER = re.compile(r"^\s*(.+?)\s+(\d+)/(\d+)\s+([\d.]+):")


def samples(data: str) -> list:
    """[(time, comm, pid, tid, leaf frame)] of every sample in the perf file."""
    out = subprocess.run(["perf", "script", "-i", data, "-F", "comm,pid,tid,time,ip,sym,dso"],
                         capture_output=True, text=True, check=True).stdout
    res, cur = [], None
    for line in out.splitlines():
        m = HEADER.match(line)
        if m:
            cur = [float(m.group(4)), m.group(1), int(m.group(2)), int(m.group(3)), None]
            res.append(cur)
        elif line.strip() and cur is not None and cur[4] is None:
            cur[4] = line.strip()
    return res


def classify(leaf: str) -> str:
    parts = (leaf or "").split(None, 1)  # "ADDRESS SYMBOL+OFF (DSO)"
    sym = parts[1] if len(parts) > 1 else "?"
    if "[kernel.kallsyms]" in sym:
        return "kernel"
    if re.search(r"perf-\d+\.map", sym):
        return "guest code (translated)"
    name = sym.split()[0].split("+")[0]
    for label, rx in CLASSES:
        if rx.match(name):
            return label
    return "other"


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    data, runs = sys.argv[1], json.load(open(sys.argv[2]))
    w = float(sys.argv[3]) if len(sys.argv) > 3 else 0.05
    all_samples = samples(data)
    for r in runs:
        tp = r.get("target_pid")
        if not tp or "error" in r:
            continue
        for label, t0, mine in (("source steady", r["t_stop"] - 0.5, lambda p: p != tp),
                                ("target after RESUME", r["t_resume"], lambda p: p == tp)):
            sel = [s for s in all_samples if t0 <= s[0] < t0 + w
                   and s[1].startswith("qemu-system") and mine(s[2])]
            if not sel:
                continue
            # the vCPU thread is the QEMU thread with the most samples in the window
            vcpu = collections.Counter(s[3] for s in sel).most_common(1)[0][0]
            c = collections.Counter(classify(s[4]) for s in sel if s[3] == vcpu)
            n = sum(c.values())
            print("%s #%d %-19s vCPU thread %3d samples in %.0f ms: %s"
                  % (r["variant"], r["run"], label, n, w * 1e3,
                     ", ".join("%s %d%%" % (k, round(100 * v / n)) for k, v in c.most_common())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
