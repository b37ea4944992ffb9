"""Weak-to-strong with debate on SST-2 (recipes/sst2_w2s.yaml: MiniLM weak, SmolLM2-135M strong, embedded debaters).

Runs the recipe once and prints, from that run: test accuracy and PGR of every variant (weak alone, the
weak ensembles with and without debate, the debate judge, each weak -> strong student, the gold ceiling),
the split sizes (examples and reviews: paired, each review is asked with both answers) and where the time went.

Usage: python benchmarks/w2s.py [--limit N] [--recipe recipes/sst2_w2s.yaml] [--data-dir ../shared/data]
       [--out /tmp/agentlab-bench/w2s] [--fresh]
"""

from __future__ import annotations

from _recipe_bench import main


def table(manifest: dict) -> str:
    """The PGR table, the split sizes and the timings, from one manifest."""
    from agentlab.w2s.metrics import DESCRIPTIONS

    m, info = manifest["metrics"]["w2s"], manifest["metrics"]["w2s_run"]
    fmt = lambda v: "n/a" if v is None else f"{v:.4f}"
    lines = ["| variant | accuracy | PGR | what |", "|---|---|---|---|"]
    lines += [f"| {k} | {fmt(v['accuracy'])} | {fmt(v['pgr'])} | {DESCRIPTIONS.get(k, '')} |" for k, v in m.items()]
    s, r = info["sizes"], info.get("source_rows", {})
    lines.append(f"\nsplits (examples / reviews): half 1 {s['half1']} / {r.get('half1')}, half 2 {s['half2']} / {r.get('half2')}, "
                 f"test {s['test']} / {r.get('test')}; paired {info.get('paired')}; positive (correct) rate {info['positive_rate']}")
    if info.get("pgr_note"):
        lines.append(info["pgr_note"])
    t = info["timings"]
    lines.append(f"seconds: debate {t.get('debate')}, weak students {t.get('weak')}, strong students {t.get('strong')}")
    return "\n".join(lines)


if __name__ == "__main__":
    main(__doc__, "recipes/sst2_w2s.yaml", "sst2/dev.tsv", "reviews", "/tmp/agentlab-bench/w2s", table)
