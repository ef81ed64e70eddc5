#!/usr/bin/env python3
"""Fails when the modules of a Rust crate import each other in a cycle.

Usage: module_cycles.py <crate>/src [-v]

A module is a file (or a folder's mod.rs); `crate::a::b` names module `a::b` when `a` is a
folder, else `a`. Imports inside `#[cfg(test)] mod tests` and comments do not count. Prints
every strongly connected component of more than one module (exit 1) and, with -v, each module's
imports.
"""
import os
import re
import sys


def modules(root):
    folders = {d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d))}

    def name(path):
        parts = path.split("::")
        return "::".join(parts[:2]) if parts[0] in folders and len(parts) > 1 else parts[0]

    mods = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(dirpath, f)
            rel = os.path.relpath(path, root)[:-3].replace(os.sep, "::")
            rel = rel[: -len("::mod")] if rel.endswith("::mod") else rel
            if rel in ("lib", "main"):
                continue
            src = open(path, encoding="utf-8").read()
            src = re.sub(r"#\[cfg\(test\)\]\s*mod tests\s*\{.*", "", src, flags=re.S)
            src = "\n".join(l for l in src.split("\n") if not l.strip().startswith("//"))
            deps = set()
            for m in re.finditer(r"crate::([a-z_]+(?:::[a-z_]+)?)(::\{([^}]*)\})?", src):
                base = m.group(1)
                if m.group(3) and base in folders:
                    for item in m.group(3).split(","):
                        head = re.match(r"\s*([a-z_]+)", item)
                        if head:
                            deps.add(base if head.group(1) == "self" else f"{base}::{head.group(1)}")
                else:
                    deps.add(name(base))
            deps.discard(rel)
            mods[rel] = deps
    return mods


def cycles(mods):
    """Tarjan's strongly connected components, iteratively."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    for start in sorted(mods):
        if start in index:
            continue
        work = [(start, iter(sorted(mods[start])))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in mods:
                    continue
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(mods[w]))))
                    advanced = True
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def main():
    root = sys.argv[1]
    mods = modules(root)
    if "-v" in sys.argv:
        for m in sorted(mods):
            print(m, "->", ", ".join(sorted(d for d in mods[m] if d in mods)))
    found = cycles(mods)
    for c in found:
        print("import cycle:", " <-> ".join(c))
    if not found:
        print(f"{root}: {len(mods)} modules, no import cycle")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
