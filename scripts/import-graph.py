#!/usr/bin/env python3
"""Import graph of a Rust crate's modules, and the circles in it.

Usage: scripts/import-graph.py [--edges] [--top] SRC_DIR...

For each crate source directory (src/, rib/src, ...) this reads every .rs
file, names it as a module (lib.rs/main.rs: the crate root `crate`;
foo.rs or foo/mod.rs: `foo`; foo/bar.rs: `foo::bar`) and records an edge
A -> B whenever code of A names an item of B:

* `use` declarations with `crate::`, `super::`, `self::` or a child
  module's name as their first segment, groups `{..}` expanded;
* paths in code starting with `crate::`, `super::`, `self::` or the name of
  a child module (`connection::ConnEvent` in session/mod.rs), and the
  functions serde attributes name (`deserialize_with = "de::port"`).

A path is resolved to the deepest module it names; an item that a module
re-exports with `pub use` is followed to the module defining it, so a
facade (`pub use rib::Rib` in lib.rs) does not count as a dependency of
the facade's users on the facade, nor of the facade on the module: a
re-export only names an item for others. Inline modules (`mod tests {..}`)
belong to their file. Comments, strings and attributes are ignored.

It then reports every strongly connected component of more than one
module (a circle) with the edges inside it and where they are written;
with --top, also the graph of top-level modules (`session::socket`
counts as `session`). Exit status 1 if there is a circle.
"""

import os
import re
import sys
from collections import defaultdict

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
# A char literal (not a lifetime): 'x', '\n', '\x7f', '\u{1F600}'.
CHAR = re.compile(r"'(?:\\(?:x[0-9a-fA-F]{2}|u\{[0-9a-fA-F]+\}|.)|[^\\'\n])'")


def strip_code(text):
    """Comments, string and char literals blanked (line numbers kept)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append("\n" * text.count("\n", i, j))
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:i + 10]) and (i == 0 or not re.match(r"\w", text[i - 1])):
            m = re.match(r'r(#*)"', text[i:])
            end = '"' + m.group(1)
            j = text.find(end, i + len(m.group(0)))
            j = n if j < 0 else j + len(end)
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j + 1
        elif c == "'" and CHAR.match(text, i):
            out.append("' '")
            i = CHAR.match(text, i).end()
        else:
            out.append(c)
            i += 1
    return "".join(out)


def serde_paths(text):
    """Functions serde attributes name in strings (`deserialize_with =
    "de::port"`) written out as code, so that they count as paths."""
    return re.sub(
        r'\b(deserialize_with|serialize_with|with|default|skip_serializing_if)\s*=\s*"([\w:]+)"',
        lambda m: f"{m.group(1)} = {m.group(2)}",
        text,
    )


def module_of(root, path):
    rel = os.path.relpath(path, root)[:-3].split(os.sep)
    if rel in (["lib"], ["main"]):
        return ()
    if rel[-1] == "mod":
        rel = rel[:-1]
    return tuple(rel)


def expand_use(tree):
    """`a::{b, c::{d, self}}` -> [[a, b], [a, c, d], [a, c]]."""
    tree = re.sub(r"\s+as\s+", "@as@", tree)
    tree = re.sub(r"\s+", "", tree)

    def parse(s, prefix):
        paths = []
        depth, start, parts = 0, 0, []
        for k, ch in enumerate(s):
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            elif ch == "," and depth == 0:
                parts.append(s[start:k])
                start = k + 1
        parts.append(s[start:])
        for part in parts:
            if not part:
                continue
            if "{" in part:
                head, inner = part.split("{", 1)
                inner = inner[: inner.rfind("}")]
                head = [x for x in head.split("::") if x]
                paths += parse(inner, prefix + head)
            else:
                part = part.split("@as@")[0]
                segs = [x for x in part.split("::") if x]
                if segs == ["self"]:
                    paths.append(prefix)
                else:
                    paths.append(prefix + segs)
        return paths

    return parse(tree, [])


class Crate:
    def __init__(self, root):
        self.root = root
        self.files = {}  # module -> (path, stripped text)
        for d, _, names in os.walk(root):
            for name in sorted(names):
                if name.endswith(".rs"):
                    p = os.path.join(d, name)
                    if os.path.basename(p) == "main.rs" and os.path.exists(os.path.join(root, "lib.rs")):
                        continue  # the binary is the library's user, not one of its modules
                    if "bin" in os.path.relpath(p, root).split(os.sep)[:-1]:
                        continue
                    with open(p) as f:
                        raw = f.read()
                    self.files[module_of(root, p)] = (p, strip_code(serde_paths(raw)))
        self.modules = set(self.files)
        # Inline modules are part of their file but resolve paths from inside.
        self.inline = set()
        for m, (_, text) in self.files.items():
            for im in re.finditer(r"\bmod\s+(" + IDENT + r")\s*\{", text):
                self.inline.add(m + (im.group(1),))
        self.reexports = self.find_reexports()

    def children(self, m):
        return {x[-1] for x in self.modules | self.inline if len(x) == len(m) + 1 and x[: len(m)] == m}

    def uses(self, m, text):
        """(line, path segments, is_pub) of every use declaration; the path
        is absolute (from the crate root) when it starts in this crate."""
        for u in re.finditer(r"(\bpub(?:\([^)]*\))?\s+)?\buse\s+([^;]+);", text):
            line = text.count("\n", 0, u.start()) + 1
            scope = self.scope_at(m, text, u.start())
            for segs in expand_use(u.group(2)):
                if segs and segs[-1] == "*":
                    segs = segs[:-1]
                absolute = self.absolute(scope, segs)
                if absolute is not None:
                    yield line, absolute, bool(u.group(1))

    def scope_at(self, m, text, pos):
        """The module (file module plus inline modules) at offset `pos`."""
        scope = list(m)
        stack = []
        depth = 0
        k = 0
        for tok in re.finditer(r"\bmod\s+(" + IDENT + r")\s*\{|\{|\}", text[:pos]):
            if tok.group(0) == "{":
                depth += 1
            elif tok.group(0) == "}":
                depth -= 1
                if stack and stack[-1][1] == depth:
                    stack.pop()
                    scope.pop()
            else:
                stack.append((tok.group(1), depth))
                depth += 1
                scope.append(tok.group(1))
        return tuple(scope)

    def absolute(self, scope, segs):
        if not segs:
            return None
        segs = list(segs)
        if segs[0] == "crate":
            return tuple(segs[1:])
        base = list(scope)
        if segs[0] == "self":
            return tuple(base + segs[1:])
        if segs[0] == "super":
            while segs and segs[0] == "super":
                base = base[:-1]
                segs = segs[1:]
            return tuple(base + segs)
        if segs[0] in self.children(tuple(scope)):
            return tuple(base + segs)
        return None  # another crate or std

    def find_reexports(self):
        """(module, name) -> absolute path of the item re-exported."""
        out = {}
        for m, (_, text) in self.files.items():
            for _, path, is_pub in self.uses(m, text):
                if is_pub and path:
                    out[(m, path[-1])] = path
        return out

    def file_module(self, path):
        """Deepest file module a path names, following re-exports."""
        for _ in range(10):
            k = len(path)
            while k and tuple(path[:k]) not in self.modules:
                k -= 1
            m = tuple(path[:k])
            rest = path[k:]
            if rest and (m, rest[0]) in self.reexports:
                target = self.reexports[(m, rest[0])]
                path = tuple(target) + tuple(rest[1:])
                continue
            return m
        return m

    def edges(self):
        """{(from, to): [(file, line), ...]}."""
        out = defaultdict(list)
        for m, (p, text) in self.files.items():
            for line, path, is_pub in self.uses(m, text):
                if is_pub:
                    continue
                to = self.file_module(path)
                if to != m:
                    out[(m, to)].append((p, line))
            # Paths in code (outside use declarations).
            # Blanked in place (same length), so offsets into `code` are
            # offsets into `text` for the line number and the scope.
            code = re.sub(r"\buse\s+[^;]+;", blank, text)
            code = re.sub(r"#!?\[[^\]]*\]", blank, code)
            for hit in re.finditer(r"(?<![\w:])((?:" + IDENT + r")(?:::" + IDENT + r")+)", code):
                segs = hit.group(1).split("::")
                scope = self.scope_at(m, text, hit.start())
                absolute = self.absolute(scope, segs)
                if absolute is None:
                    continue
                to = self.file_module(absolute)
                if to != m:
                    out[(m, to)].append((p, text.count("\n", 0, hit.start()) + 1))
        return out


def blank(match):
    """A match replaced by spaces, its newlines kept."""
    return re.sub(r"[^\n]", " ", match.group(0))


def name(m):
    return "::".join(m) if m else "crate"


def sccs(nodes, adj):
    index, low, on, stack, result = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in adj.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                result.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return result


def report(title, nodes, edges, show_edges):
    adj = defaultdict(set)
    for a, b in edges:
        adj[a].add(b)
    circles = sccs(nodes, adj)
    print(f"  {title}: {len(nodes)} modules, {len(edges)} edges, "
          f"{len(circles)} circle{'s' if len(circles) != 1 else ''}")
    if show_edges:
        for (a, b) in sorted(edges):
            print(f"    {name(a)} -> {name(b)}")
    for comp in circles:
        nested = any(all(c[: len(a)] == a for c in comp) for a in comp)
        label = "  (a module and its own submodules)" if nested else ""
        print("    circle: " + " <-> ".join(name(c) for c in comp) + label)
        members = set(comp)
        for (a, b), where in sorted(edges.items()):
            if a in members and b in members:
                where = sorted(set(where))
                locs = ", ".join(f"{os.path.relpath(p)}:{l}" for p, l in where[:3])
                more = f" (+{len(where) - 3})" if len(where) > 3 else ""
                print(f"      {name(a)} -> {name(b)}  [{locs}{more}]")
    return len(circles)


def main(argv):
    show_edges = "--edges" in argv
    top = "--top" in argv
    roots = [a for a in argv if not a.startswith("--")]
    if not roots:
        print(__doc__)
        return 2
    total = 0
    for root in roots:
        crate = Crate(root)
        edges = crate.edges()
        print(f"{root}:")
        total += report("modules", crate.modules, edges, show_edges)
        if top:
            top_edges = defaultdict(list)
            for (a, b), where in edges.items():
                ta, tb = a[:1], b[:1]
                if ta != tb:
                    top_edges[(ta, tb)] += where
            total += report("top-level modules", {m[:1] for m in crate.modules}, top_edges, show_edges)
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
