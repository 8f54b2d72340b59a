"""The checklist and the verdict as ``cnnbench diagnose`` prints them."""

from __future__ import annotations

from pathlib import Path

from .results import FAIL, INFO, PASS, SKIP, WARN, Diagnosis


def render_text(d: Diagnosis) -> str:
    title = d.preset or Path(d.dataset).name
    lines = [f"diagnose {d.model} on {title} ({d.family}, {d.task}; fingerprint {d.fingerprint[:12]})",
             f"seed {d.seed}, {d.steps} probe steps on {d.probe_samples} train images "
             f"(test never read), {d.params:,} parameters, {d.wall_time_s:.1f} s", ""]
    width = max(len(c.name) for c in d.checks)
    for c in d.checks:
        lines.append(f"{c.status:<4}  {c.name:<{width}}  {c.evidence}")
        if c.advice and c.status in (WARN, FAIL, INFO):
            lines.append(f"{'':<4}  {'':<{width}}  -> {c.advice}")
    counts = d.counts()
    lines += ["", ", ".join(f"{counts[s]} {s}" for s in (FAIL, WARN, PASS, SKIP) if counts[s]), ""]
    if not d.causes:
        warns = [c.name for c in d.checks if c.status == WARN]
        lines.append("Verdict: nothing stops this recipe from learning"
                     + (f" (worth a look: {', '.join(warns)})" if warns else ""))
        return "\n".join(lines)
    top, rest = d.causes[0], d.causes[1:]
    lines += [f"Verdict: {top.title} [{top.key}] ({top.strength}: {', '.join(top.evidence) or 'symptoms'})",
              f"  {top.why}", f"  -> {top.advice}"]
    for c in rest:
        lines.append(f"  then: {c.title} [{c.key}] ({', '.join(c.evidence)}): {c.why}")
    return "\n".join(lines)
