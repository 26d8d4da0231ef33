"""Draw the main curves of docs/benchmarks.md as SVG files: ops/s against
client threads (index, baseline, ceiling) for REGISTER and LIST_CONTENT,
and the index's p99 latency.  bench.py calls it after each run; it reads
the tables of the report it just wrote, so the pictures always show the
report's figures.  Standalone: bench/plots.py docs/benchmarks.md docs/img
(python3-matplotlib from Debian; scripts/deps.sh plot)."""
import os
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

WORKLOADS = ("REGISTER", "LIST_CONTENT")


def tables(path):
    """{section title: [row cells, ...]} of every markdown table in path."""
    out, title = {}, None
    with open(path) as f:
        for line in f:
            if line.startswith("## "):
                title = line[3:].strip()
            elif line.startswith("|") and title and not line.startswith("| ---"):
                out.setdefault(title, []).append([c.strip() for c in line.strip()[1:-1].split("|")])
    return {t: rows[1:] for t, rows in out.items()}      # without the header row


def number(cell):
    return float(re.match(r"[\d.]+", cell.replace("*", "")).group(0))


def curves(rows, index_col, other_col):
    """{workload: {"threads": [...], "index": [...], "p50": [...], "p99": [...],
    "other": [...]}} from a throughput-like table."""
    out = {}
    for r in rows:
        w = next((w for w in WORKLOADS if w in r[0]), None)
        if w is None:
            continue
        c = out.setdefault(w, {"threads": [], "index": [], "p50": [], "p99": [], "other": []})
        m = re.match(r"([\d.]+) \(([\d.]+) / ([\d.]+)\)", r[index_col])
        c["threads"].append(int(r[1]))
        c["index"].append(float(m.group(1)))
        c["p50"].append(float(m.group(2)))
        c["p99"].append(float(m.group(3)))
        c["other"].append(number(r[other_col]))
    return out


def style(ax, title, ylabel, threads):
    ax.set_title(title)
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(threads))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%d"))
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlabel("client threads")
    ax.set_ylabel(ylabel)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)


def save(fig, path):
    fig.tight_layout()
    fig.savefig(path, format="svg", metadata={"Date": None})
    plt.close(fig)
    print("plots: wrote %s" % path)


def main(report, outdir):
    plt.rcParams["svg.hashsalt"] = "peerdex"          # the same figures, the same file
    plt.rcParams["svg.fonttype"] = "none"             # text as text: small files
    t = tables(report)
    logged = curves(t.get("Throughput against a minimal server", []), 2, 3)
    bare = curves(t.get("Against the ceiling", []), 2, 3)
    os.makedirs(outdir, exist_ok=True)

    def threads(w):
        return set(logged.get(w, {}).get("threads", [])) | set(bare.get(w, {}).get("threads", []))

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, w in zip(axes, WORKLOADS):
        if w in logged:
            c = logged[w]
            ax.plot(c["threads"], c["index"], "o-", color="C0", label="index, operation log on")
            ax.plot(c["threads"], c["other"], "s--", color="C1",
                    label="baseline server (thread per connection)")
        if w in bare:
            c = bare[w]
            ax.plot(c["threads"], c["index"], "o-", color="C2", label="index, operation log off")
            ax.plot(c["threads"], c["other"], "^:", color="C3",
                    label="ceiling server (no registry)")
        ax.set_ylim(bottom=0)
        style(ax, w, "ops/s", threads(w))
    save(fig, os.path.join(outdir, "bench-throughput.svg"))

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, w in zip(axes, WORKLOADS):
        for curves_, label, color in ((logged, "log on", "C0"), (bare, "log off", "C2")):
            if w in curves_:
                c = curves_[w]
                ax.plot(c["threads"], c["p99"], "o-", color=color, label="index p99, " + label)
                ax.plot(c["threads"], c["p50"], ".--", color=color, label="index p50, " + label)
        ax.set_yscale("log")
        style(ax, w, "latency, microseconds", threads(w))
    save(fig, os.path.join(outdir, "bench-latency.svg"))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: plots.py REPORT.md OUTDIR")
    main(sys.argv[1], sys.argv[2])
