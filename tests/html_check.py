#!/usr/bin/env python3
"""html_check.py - the checks of tests/html.sh on `cebox report --format html`.

  valid PAGE            every element closed in order (void ones excepted),
                        nothing fetched: no http(s) URL, no script, no
                        external stylesheet, image or font
  content DOM JSON      the page (as Chromium rendered it: --dump-dom) holds
                        what the JSON report of the same logs says: one
                        section per process, the table of contents, every
                        site's functions (inlined frames marked), a bar per
                        reason, and the slot maps cell by cell
                        and, per process, its timeline charts (a path and
                        a point per sample, a band per run of samples in a
                        state other than normal, a marker per failure, the
                        samples' table) and its crash view (the signal, the
                        crash stack, the failure before it and its stack)
                        and its leak views: the totals by kind, the leak
                        sites, the steadily growing sites, the peak's and
                        the pinning sites, each site's figures and stack,
                        and the slot's occupants; prints how many rows of
                        each it checked
                        and the maps sampled on its timeline: each drawn
                        map cell by cell as the JSON's "sampled_maps", and
                        each chart point and samples' row linking to the
                        map the JSON's "map" names (or, for a sample after
                        a failure's or the exit's map, to that one)
  target PAGE JSON SHOT headless Chromium driven over its DevTools pipe:
                        a real click on the chart point and on the
                        samples' row of an early and of a late sample makes
                        that sample's map the page's :target, shown (the
                        other sampled maps hidden) with the cells of the
                        JSON's map for that moment, which differ between
                        the two; SHOT: a screenshot of the late one
  hostile PAGE TEXT     TEXT (markup from the log) appears as text only: no
                        element the page does not write, no on* attribute
  png SHOT COLOUR...    the screenshot is not blank: many colours, and each
                        COLOUR (rrggbb: the map's and the chart's) drawn
Exits 1 with the reason on the first failed check.
"""
import base64
import fcntl
import html.parser
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib

# Every element html.c writes: any other one came from a log.
PAGE_TAGS = {"#root", "html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "h3", "h4", "p",
             "nav", "ol", "ul", "li", "a", "main", "section", "dl", "dt", "dd", "div", "table", "thead", "tbody",
             "tr", "th", "td", "span", "code", "details", "summary", "pre", "figure", "figcaption", "svg", "g",
             "text", "rect", "footer", "path", "line", "circle"}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Tree(html.parser.HTMLParser):
    """The elements of a page, each with its attributes, text and children."""

    def __init__(self, strict):
        super().__init__(convert_charrefs=True)
        self.strict = strict
        self.root = {"tag": "#root", "attrs": {}, "children": [], "text": ""}
        self.stack = [self.root]
        self.errors = []

    def handle_starttag(self, tag, attrs):
        node = {"tag": tag, "attrs": dict(attrs), "children": [], "text": ""}
        self.stack[-1]["children"].append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag, attrs):
        self.stack[-1]["children"].append({"tag": tag, "attrs": dict(attrs), "children": [], "text": ""})

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if len(self.stack) > 1 and self.stack[-1]["tag"] == tag:
            self.stack.pop()
            return
        self.errors.append("line %d: </%s> closes <%s>" % (self.getpos()[0], tag, self.stack[-1]["tag"]))
        while self.strict is False and len(self.stack) > 1 and self.stack.pop()["tag"] != tag:
            pass

    def handle_data(self, data):
        for node in self.stack:
            node["text"] += data


def parse(path, strict):
    t = Tree(strict)
    t.feed(open(path, encoding="utf-8").read())
    t.close()
    if strict and len(t.stack) > 1:
        t.errors.append("unclosed at the end: " + " ".join("<%s>" % n["tag"] for n in t.stack[1:]))
    return t


def walk(node):
    yield node
    for c in node["children"]:
        yield from walk(c)


def find(node, tag, cls=None):
    return [n for n in walk(node) if n["tag"] == tag and (cls is None or cls in n["attrs"].get("class", "").split())]


def fail(msg):
    print("html_check: " + msg)
    sys.exit(1)


def valid(page):
    t = parse(page, strict=True)
    if t.errors:
        fail("not well formed: " + "; ".join(t.errors[:5]))
    text = open(page, encoding="utf-8").read()
    if re.search(r"https?://", text, re.I):
        fail("an http(s) URL: " + re.search(r".{0,40}https?://.{0,40}", text, re.I).group(0))
    for n in walk(t.root):
        a = n["attrs"]
        if n["tag"] in ("script", "iframe", "object", "embed", "link", "img") or "src" in a or \
                any(k.startswith("on") for k in a):
            fail("something that loads or runs: <%s %s>" % (n["tag"], a))
    if "@import" in text or "url(" in text:
        fail("the style fetches something")


def content(dom, report):
    t = parse(dom, strict=False)
    procs = json.load(open(report))["processes"]
    sections = find(t.root, "section", "process")
    if [s["attrs"].get("data-pid") for s in sections] != [str(p["pid"]) for p in procs]:
        fail("process sections %s, the JSON report has %s" %
             ([s["attrs"].get("data-pid") for s in sections], [p["pid"] for p in procs]))
    nav = [n for n in walk(t.root) if n["tag"] == "nav" and n["attrs"].get("id") == "contents"]
    if len(procs) > 1:
        links = [a["attrs"].get("href") for a in find(nav[0], "a")] if nav else []
        if links != ["#p%d" % (i + 1) for i in range(len(procs))]:
            fail("contents %s for %d processes" % (links, len(procs)))
        for p, s in zip(procs, sections):
            if s["attrs"].get("id") not in [l[1:] for l in links]:
                fail("no contents entry for the section of %d" % p["pid"])
    elif nav:
        fail("contents for a single process")
    ids = {n["attrs"]["id"]: n for n in walk(t.root) if "id" in n["attrs"]}
    counts = [0] * 5
    for p, s in zip(procs, sections):
        sites = find(s, "section", "site")
        if len(sites) != len(p["oom"]):
            fail("pid %d: %d sites drawn, %d in the JSON" % (p["pid"], len(sites), len(p["oom"])))
        for site, want in zip(sites, p["oom"]):
            rows = find(find(site, "tbody")[0], "tr") if want["stack"] else []
            got = [(r["children"][2]["text"].replace("inlined", "", 1) if "inlined" in r["attrs"].get("class", "")
                    else r["children"][2]["text"], "inlined" in r["attrs"].get("class", "")) for r in rows]
            expect = [(f["function"] or "?", f["inlined"]) for f in want["stack"]]
            if got != expect:
                fail("pid %d: stack %s, the JSON has %s" % (p["pid"], got, expect))
            for r in rows:
                if ("inlined" in r["attrs"].get("class", "")) != bool(find(r, "span", "inl")):
                    fail("pid %d: an inlined frame without its mark" % p["pid"])
            link = [a["attrs"]["href"][1:] for a in find(site, "a")]
            fig = ids.get(link[0]) if link else None
            cells = find(fig, "rect", "block") if fig else []
            kinds = "".join(c["attrs"].get("data-kind") for c in cells)
            if kinds != want["first"]["slot_map"] or len(cells) != want["first"]["blocks"]:
                fail("pid %d: the map at the site's first failure has %d cells '%s', the slot %d blocks '%s'" %
                     (p["pid"], len(cells), kinds, want["first"]["blocks"], want["first"]["slot_map"]))
            if any(not find(c, "title") or not re.match(r"block \d+ at 0x[0-9a-f]+: ", find(c, "title")[0]["text"])
                   for c in cells):
                fail("pid %d: a map cell without its block on hover" % p["pid"])
        reasons = {r for site in p["oom"] for r in site["reasons"]}
        bars = find(s, "g", "bar")
        if len(bars) != len(reasons):
            fail("pid %d: %d bars for %d reasons" % (p["pid"], len(bars), len(reasons)))
        total = sum(int(find(b, "text")[1]["text"]) for b in bars)
        if total != sum(site["count"] for site in p["oom"]):
            fail("pid %d: the bars add up to %d" % (p["pid"], total))
        for m in find(s, "svg", "slot-map"):
            if len(find(m, "rect", "block")) != int(m["attrs"]["data-blocks"]):
                fail("pid %d: a map's cells differ from its block count" % p["pid"])
        if p["summary"] is not None and not find(s, "table", "summary"):
            fail("pid %d: no summary table" % p["pid"])
        timeline_charts(p, s)
        crash_view(p, s)
        counts = [a + b for a, b in zip(counts, leak_views(p, s))]
    print("leak views: %d leak sites, %d growing, %d at the peak, %d pinning, %d occupants" % tuple(counts))
    print("links: %d from failure sites to views, %d back" % cross_links(t.root, procs, sections, ids))


def stack_key(stack):
    return tuple((f["address"], f["function"], f["inlined"]) for f in stack)


def view_stacks(p):
    """Per view key of the page's row ids, the stacks of its rows in order."""
    def sites(key):
        return [stack_key(x["stack"]) for x in p[key]["sites"]] if p.get(key) else []
    return {"leak": [stack_key(l["stack"]) for l in p.get("leaks") or []],
            "growth": [stack_key(g["stack"]) for g in p["growth"]["sites"] if g["steady"]] if p.get("growth") else [],
            "peak": sites("peak"), "pin": sites("pinning"), "pinpeak": sites("pinning_peak")}


def row_after(s, row):
    """The table row after row (a view's site: its stack's row), or None."""
    for body in find(s, "tbody"):
        kids = [c for c in body["children"] if c["tag"] == "tr"]
        for i, r in enumerate(kids[:-1]):
            if r is row:
                return kids[i + 1]
    return None


def cross_links(root, procs, sections, ids):
    """Every in-page anchor resolves to an element of the page; a failure
    site links to the first row of each view with its very stack (the JSON
    tells which), and that row links back to it; returns how many of each."""
    for a in walk(root):
        href = a["attrs"].get("href", "") if a["tag"] == "a" else ""
        if href.startswith("#") and href[1:] not in ids:
            fail("a link to #%s, which no element of the page is" % href[1:])
    to_views = back = 0
    for p, s in zip(procs, sections):
        pre = s["attrs"]["id"] + "-"
        views = view_stacks(p)
        for k, (site, want) in enumerate(zip(find(s, "section", "site"), p["oom"])):
            expect = ["#%s%s-%d" % (pre, v, rows.index(stack_key(want["stack"])) + 1)
                      for v, rows in views.items() if want["stack"] and stack_key(want["stack"]) in rows]
            got = [a["attrs"]["href"] for a in find(site, "a", "to-view")]
            if sorted(got) != sorted(expect):
                fail("pid %d: failure site %d links to %s, its stack is in %s" % (p["pid"], k + 1, got, expect))
            for h in got:
                stack_row = row_after(s, ids[h[1:]])
                ret = [a["attrs"]["href"] for a in find(stack_row, "a", "to-failure")] if stack_row else []
                if ret != ["#" + site["attrs"]["id"]]:
                    fail("pid %d: the row %s links back to %s, not to #%s" % (p["pid"], h, ret, site["attrs"]["id"]))
            to_views += len(got)
        back += len(find(s, "a", "to-failure"))
    return to_views, back


def stack_functions(table):
    rows = find(find(table, "tbody")[0], "tr")
    return [r["children"][2]["text"].replace("inlined", "", 1) if "inlined" in r["attrs"].get("class", "")
            else r["children"][2]["text"] for r in rows]


def timeline_charts(p, s):
    """The charts of p's timeline against its JSON samples."""
    samples = p.get("timeline", [])
    div = find(s, "div", "timeline")
    if not samples:
        if div:
            fail("pid %d: a timeline without samples" % p["pid"])
        return
    if len(div) != 1 or div[0]["attrs"].get("data-samples") != str(len(samples)):
        fail("pid %d: the timeline is not drawn for its %d samples" % (p["pid"], len(samples)))
    figs = find(div[0], "figure", "timeline-chart")
    if [f["attrs"].get("data-measure") for f in figs] != ["committed", "live", "largest-free-run", "ram-free"]:
        fail("pid %d: timeline charts %s" % (p["pid"], [f["attrs"].get("data-measure") for f in figs]))
    # a band per run of consecutive samples in one state other than normal
    runs = [st for i, st in enumerate(x["state"] for x in samples) if i == 0 or samples[i - 1]["state"] != st]
    bands = [st for st in runs if st != "normal"]
    failures = sum(site["count"] for site in p["oom"])
    for f in figs:
        paths = find(f, "path", "series")
        if len(paths) != 1 or len(re.findall(r"[ML]", paths[0]["attrs"].get("d", ""))) != len(samples):
            fail("pid %d: chart %s: its path does not go through the %d samples" %
                 (p["pid"], f["attrs"]["data-measure"], len(samples)))
        if len(find(f, "circle", "point")) != len(samples):
            fail("pid %d: chart %s: %d points for %d samples" %
                 (p["pid"], f["attrs"]["data-measure"], len(find(f, "circle", "point")), len(samples)))
        got = [b["attrs"].get("data-state") for b in find(f, "rect", "state-band")]
        if got != bands:
            fail("pid %d: chart %s: state bands %s, the samples' states give %s" %
                 (p["pid"], f["attrs"]["data-measure"], got, bands))
        if len(find(f, "line", "failure-marker")) != failures:
            fail("pid %d: chart %s: %d failure markers for %d failures" %
                 (p["pid"], f["attrs"]["data-measure"], len(find(f, "line", "failure-marker")), failures))
        crashed = p.get("crash") is not None and p["summary"] is not None
        if len(find(f, "line", "crash-marker")) != (1 if crashed else 0):
            fail("pid %d: chart %s: crash marker" % (p["pid"], f["attrs"]["data-measure"]))
    rows = find(find(find(div[0], "table", "samples")[0], "tbody")[0], "tr")
    if len(rows) != len(samples) or [r["children"][1]["text"] for r in rows] != [x["sample"] for x in samples]:
        fail("pid %d: the samples' table differs from the JSON timeline" % p["pid"])
    for r, x in zip(rows, samples):
        items = r["children"][7]["text"]
        if items != ("-" if x["heap_free_items"] is None else str(x["heap_free_items"])):
            fail("pid %d: free items %s in the table, %s in the JSON" % (p["pid"], items, x["heap_free_items"]))
    map_targets(p, s, rows)
    headroom_table(p, s, ids_of(s))


def ids_of(s):
    """The ids of the elements under s."""
    out, todo = set(), [s]
    while todo:
        e = todo.pop()
        if "id" in e["attrs"]:
            out.add(e["attrs"]["id"])
        todo.extend(e["children"])
    return out


def json_and_sections(p, s, key, cls, stray):
    """p's JSON value under key and the page's sections of class cls; a
    section where the JSON has no value fails with `stray`."""
    value, sections = p.get(key), find(s, "section", cls)
    if value is None and sections:
        fail("pid %d: %s" % (p["pid"], stray))
    return value, sections


def headroom_table(p, s, ids):
    """The headroom section against the JSON's headroom, its map link resolving."""
    h, sec = json_and_sections(p, s, "headroom", "headroom", "a headroom section without headroom in the JSON")
    if h is None:
        return
    if len(sec) != 1:
        fail("pid %d: %d headroom sections" % (p["pid"], len(sec)))
    cells = [c["attrs"].get("data-value") for c in find(sec[0], "td", "num") if "data-value" in c["attrs"]]
    want = [str(h["min_largest_free_run_blocks"]), str(h["peak_reserved_blocks"])]
    if cells != want:
        fail("pid %d: headroom %s in the page, %s in the JSON" % (p["pid"], cells, want))
    for a in find(sec[0], "a", "headroom-map"):
        if a["attrs"]["href"][1:] not in ids:
            fail("pid %d: the headroom's map link %s resolves to nothing" % (p["pid"], a["attrs"]["href"]))
    if not any("cebox fit" in c["text"] for c in find(sec[0], "code", None)):
        fail("pid %d: the headroom names no cebox fit command" % p["pid"])


def runs_cells(runs):
    """The cells of a JSON sampled map's run-length encoding ("-1H1h7.503")."""
    return "".join(c * int(n) for c, n in re.findall(r"(\D)(\d+)", runs))


def map_targets(p, s, rows):
    """The sampled maps of p's timeline: the drawn figures against the
    JSON, and each sample's links (its row's, its points') to its map."""
    maps, samples = p.get("sampled_maps", []), p.get("timeline", [])
    sec = find(s, "section", "tlmaps")
    figs = {f["attrs"]["id"]: f for f in find(s, "figure", "tlmap")}
    if not maps:
        if sec or figs:
            fail("pid %d: sampled maps drawn without any in the JSON" % p["pid"])
        return
    if len(sec) != 1 or sec[0]["attrs"].get("data-sampled") != str(len(maps)) or not figs or \
            len(figs) > 16 or len(figs) != int(sec[0]["attrs"].get("data-drawn", -1)):
        fail("pid %d: %d sampled maps drawn of the JSON's %d" % (p["pid"], len(figs), len(maps)))
    index = s["attrs"]["id"]
    for fid, f in figs.items():
        m = re.fullmatch(r"%s-t(\d+)" % index, fid)
        want = runs_cells(maps[int(m.group(1)) - 1]["runs"]) if m and int(m.group(1)) <= len(maps) else None
        got = "".join(c["attrs"].get("data-kind") for c in find(f, "rect", "block"))
        if got != want:
            fail("pid %d: sampled map %s has cells '%s', the JSON '%s'" % (p["pid"], fid, got[:80], (want or "")[:80]))
    exact = 0
    for i, (r, x) in enumerate(zip(rows, samples)):
        a = find(r["children"][-1], "a", "sample-map")
        if x["map"] is None:
            continue  # before the first sampled map: a failure's may still be shown
        href = a[0]["attrs"]["href"] if a else None
        own = "#%s-t%d" % (index, x["map"] + 1)
        if href is None or (href != own and own[1:] in figs):
            # A failure's, the exit's or an on-demand map taken after the
            # sampled map in force and not after the sample is the later one.
            since = maps[x["map"]]["t"]
            later = any(since <= m["t"] <= x["t"] for m in p.get("maps", []))
            if (x["sample"] not in ("failure", "exit") and not later) or href is None or \
                    not re.fullmatch(r"#%s-[fm]\d+" % index, href):
                fail("pid %d: sample %d (%.3f s, map %d) links to %s" % (p["pid"], i, x["t"], x["map"], href))
        exact += href == own
    if exact == 0:
        fail("pid %d: no sample links to its own sampled map" % p["pid"])
    links = [a["attrs"]["href"] for r in rows for a in find(r["children"][-1], "a", "sample-map")]
    for fig in find(s, "figure", "timeline-chart"):
        if [a["attrs"]["href"] for a in find(fig, "a", "point-map")] != links:
            fail("pid %d: chart %s: its points link elsewhere than the samples' rows" %
                 (p["pid"], fig["attrs"]["data-measure"]))


def crash_view(p, s):
    """The crash of p (the JSON's "crash") as its section shows it."""
    crash, views = json_and_sections(p, s, "crash", "crash", "a crash view for a process that did not crash")
    if crash is None:
        return
    if len(views) != 1 or views[0]["attrs"].get("data-signal") != crash["signal"]:
        fail("pid %d: no crash view for %s" % (p["pid"], crash["signal"]))
    v = views[0]
    where = find(v, "p", "where")[0]["text"]
    if not where.startswith("Died of " + crash["signal"]):
        fail("pid %d: the crash view says %r" % (p["pid"], where))
    tables = find(v, "table", "stack")
    want = [f["function"] or "?" for f in crash["stack"]]
    if not want or stack_functions(tables[0]) != want or (crash["stack"][0]["function"] or "?") not in where:
        fail("pid %d: crash stack %s, the JSON has %s" % (p["pid"], stack_functions(tables[0]) if tables else [], want))
    before = crash.get("after_failure")
    if before is None:
        if find(v, "p", "before"):
            fail("pid %d: a failure before a crash that had none" % p["pid"])
        return
    text = find(v, "p", "before")[0]["text"] if find(v, "p", "before") else ""
    if ("%s failure of %s(" % ("injected" if before["reason"] == "injected" else "last", before["api"])) not in text:
        fail("pid %d: the failure before the crash reads %r" % (p["pid"], text))
    if len(tables) != 2 or stack_functions(tables[1]) != [f["function"] or "?" for f in before["stack"]]:
        fail("pid %d: the stack of the failure before the crash" % p["pid"])


def view_rows(s, cls):
    """The sites of the view table of class cls in section s: per site, its
    figures (data-field: data-value) and its stack's functions."""
    tables = [t for t in find(s, "table", "leakview") if cls in t["attrs"]["class"].split()]
    if len(tables) != 1:
        return None
    rows = [r for b in tables[0]["children"] if b["tag"] == "tbody" for r in b["children"] if r["tag"] == "tr"]
    sites = [r for r in rows if "site" in r["attrs"].get("class", "").split()]
    stacks = [r for r in rows if "site-stack" in r["attrs"].get("class", "").split()]
    if len(sites) != len(stacks):
        fail("%s: %d sites but %d stacks" % (cls, len(sites), len(stacks)))
    got = []
    for r, st in zip(sites, stacks):
        fields = {c["attrs"]["data-field"]: c["attrs"]["data-value"]
                  for c in r["children"] if "data-field" in c["attrs"]}
        t = find(st, "table", "stack")
        got.append((fields, stack_functions(t[0]) if t else []))
    return got


def functions(stack):
    return [f["function"] or "?" for f in stack]


def same_view(p, s, cls, want, keys):
    """The rows of view cls hold the JSON's sites want: each key's value
    (numbers exactly, floats to a thousandth) and the stack."""
    got = view_rows(s, cls)
    if got is None:
        fail("pid %d: no %s table for the JSON's %d sites" % (p["pid"], cls, len(want)))
    expect = [({k: ("" if w[k] is None else ("%.3f" % w[k] if isinstance(w[k], float) else str(w[k]))) for k in keys},
               functions(w["stack"])) for w in want]
    if got != expect:
        fail("pid %d: %s rows %s, the JSON has %s" % (p["pid"], cls, got[:3], expect[:3]))
    return len(got)


def occupant_name(td):
    """An occupant's name: its cell's text but the note after it."""
    note = find(td, "span", "note")
    return td["text"][:-len(note[0]["text"]) - 1] if note else td["text"]


def leak_views(p, s):
    """The leaks, growth, peak, pinning and occupants of p as its section
    shows them; returns how many rows of each were checked."""
    n = [0] * 5
    for key, cls in (("leaks", "leaks"), ("growth", "growth"), ("peak", "peak"), ("pinning", "pinning")):
        absent = p.get(key) is None and (key != "pinning" or p.get("pinning_peak") is None)
        if absent != (not find(s, "section", cls)):
            fail("pid %d: the JSON's %s is %s, the page has %d such sections" %
                 (p["pid"], key, "null" if p.get(key) is None else "there", len(find(s, "section", cls))))
    if p.get("leaks") is not None:
        totals = {r["attrs"]["data-kind"]: tuple(int(c["attrs"]["data-value"]) for c in r["children"]
                                                 if "data-field" in c["attrs"])
                  for r in find(s, "tr", "total")}
        if totals != {k: (v["bytes"], v["blocks"]) for k, v in p["leak_totals"].items()}:
            fail("pid %d: leak totals %s, the JSON has %s" % (p["pid"], totals, p["leak_totals"]))
        if p["leaks"]:
            n[0] = same_view(p, s, "leak-sites", p["leaks"], ("kind", "what", "bytes", "charged_bytes", "blocks"))
        elif view_rows(s, "leak-sites") is not None:
            fail("pid %d: a leak-sites table without leaks" % p["pid"])
    if p.get("growth") is not None:
        g = find(s, "section", "growth")[0]
        if g["attrs"].get("data-samples") != str(p["growth"]["samples"]):
            fail("pid %d: growth of %s samples, the JSON has %d" % (p["pid"], g["attrs"].get("data-samples"),
                                                                    p["growth"]["samples"]))
        steady = [dict(x, bytes_per_s=int(x["bytes_per_s"] + 0.5)) for x in p["growth"]["sites"] if x["steady"]]
        if steady:
            n[1] = same_view(p, s, "growth", steady, ("points", "first_bytes", "bytes", "blocks", "bytes_per_s",
                                                      "slot_free_bytes", "slot_fill_s", "ram_free_bytes", "ram_fill_s"))
    if p.get("peak") is not None and p["peak"]["sites"]:
        n[2] = same_view(p, s, "peak", p["peak"]["sites"], ("bytes", "blocks"))
    if p.get("pinning") is not None and p["pinning"]["sites"]:
        n[3] = same_view(p, s, "pinning", p["pinning"]["sites"], ("bytes", "regions", "pages",
                                                                 "largest_free_run_without_blocks"))
    if p.get("pinning_peak") is not None and p["pinning_peak"]["sites"]:
        n[3] += same_view(p, s, "pinning-peak", p["pinning_peak"]["sites"], ("bytes", "regions", "pages",
                                                                           "largest_free_run_without_blocks"))
    rows = find(s, "tr", "occupant")
    got = [(r["attrs"].get("data-kind"), int(r["attrs"].get("data-first-block")), int(r["attrs"].get("data-blocks")),
            occupant_name(find(r, "td", "name")[0])) for r in rows]
    want = [(o["kind"], o["first_block"], o["blocks"], o["name"]) for o in p.get("occupants", [])]
    if got != want:
        fail("pid %d: occupants %s, the JSON has %s" % (p["pid"], got, want))
    n[4] = len(rows)
    return n


class Browser:
    """Headless Chromium driven over its DevTools pipe (--remote-debugging-
    pipe: it reads commands on descriptor 3 and answers on 4, each message
    a JSON text ended by a NUL byte), with one page open."""

    def __init__(self):
        ours_r, theirs_w = os.pipe()
        theirs_r, ours_w = os.pipe()
        # the child's ends moved above 4 first, so that dup2 onto 3 and 4
        # cannot close one of them
        theirs_r, theirs_w = [self.high(fd) for fd in (theirs_r, theirs_w)]
        self.profile = tempfile.mkdtemp()
        chromium = os.environ.get("CHROMIUM", "chromium")

        def descriptors():
            os.dup2(theirs_r, 3)
            os.dup2(theirs_w, 4)
        self.proc = subprocess.Popen([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                      "--disable-background-networking", "--disable-component-update",
                                      "--disable-sync", "--remote-debugging-pipe", "--user-data-dir=" + self.profile,
                                      "--window-size=1200,900", "about:blank"],
                                     preexec_fn=descriptors, close_fds=False, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(theirs_r)
        os.close(theirs_w)
        self.out, self.inp, self.buf, self.n = os.fdopen(ours_w, "wb", buffering=0), os.fdopen(ours_r, "rb"), b"", 0
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]

    @staticmethod
    def high(fd):
        moved = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
        os.close(fd)
        return moved

    def call(self, method, **params):
        self.n += 1
        msg = {"id": self.n, "method": method, "params": params}
        if getattr(self, "session", None):
            msg["sessionId"] = self.session
        self.out.write(json.dumps(msg).encode() + b"\0")
        while True:
            while b"\0" not in self.buf:
                chunk = self.inp.read1(1 << 16)
                if not chunk:
                    fail("the browser closed its DevTools pipe")
                self.buf += chunk
            line, self.buf = self.buf.split(b"\0", 1)
            m = json.loads(line)
            if m.get("id") == self.n:
                if "error" in m:
                    fail("DevTools %s: %s" % (method, m["error"]))
                return m["result"]

    def js(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        if "exceptionDetails" in r:
            fail("in the page: %s: %s" % (expr[:60], r["exceptionDetails"].get("text")))
        return r["result"].get("value")

    def click(self, selector):
        """A real click (mouse events at a point of the element's first box
        where the element itself is on top, as a user would click it: the
        centre, else the first such point of a 5 by 5 grid over the box; a
        neighbouring chart point drawn over the centre would take the
        click there)."""
        box = self.js("(() => { const e = document.querySelector(%s); e.scrollIntoView({block: 'center'}); "
                      "const r = e.getClientRects()[0]; const at = [[0.5, 0.5]]; "
                      "for (const fy of [0.1, 0.3, 0.5, 0.7, 0.9]) for (const fx of [0.1, 0.3, 0.5, 0.7, 0.9]) at.push([fx, fy]); "
                      "for (const [fx, fy] of at) { const x = r.x + r.width * fx, y = r.y + r.height * fy; "
                      "const h = document.elementFromPoint(x, y); if (h && (h === e || e.contains(h))) return [x, y]; } "
                      "return null; })()" % json.dumps(selector))
        if box is None:
            fail("%s is covered by other elements wherever it could be clicked" % selector)
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)
        for _ in range(200):  # the fragment's navigation is asynchronous (20 s: a loaded machine's browser is slow)
            if self.js("location.hash") == self.js("document.querySelector(%s).getAttribute('href')"
                                                   % json.dumps(selector)):
                return
            time.sleep(0.1)
        fail("clicking %s did not follow its link" % selector)

    def close(self):
        try:
            self.session = None
            self.call("Browser.close")
            self.proc.wait(timeout=30)
        except Exception:
            self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


# In the page: the figure that is the :target, whether it and the other
# sampled maps are displayed, and its cells by kind.
SHOWN = """(() => {
  const t = document.querySelector(':target');
  const shown = [...document.querySelectorAll('figure.tlmap')].filter(f => getComputedStyle(f).display != 'none');
  const cells = t ? [...t.querySelectorAll('rect.block')].map(r => r.getAttribute('data-kind')).join('') : '';
  return {id: t ? t.id : null, shown: shown.map(f => f.id), cells: cells};
})()"""


# In the page: whether sample %d's point in the first chart is on top at
# its centre or a point of a 5 by 5 grid over it (as Browser.click tries).
ON_TOP = """(() => {
  const c = document.querySelectorAll('figure.timeline-chart circle.point')[%d];
  if (!c) return false;
  c.scrollIntoView({block: 'center'});
  const r = c.getBoundingClientRect();
  for (const f of [[0.5, 0.5], [0.3, 0.3], [0.7, 0.3], [0.3, 0.7], [0.7, 0.7], [0.1, 0.5], [0.9, 0.5], [0.5, 0.1], [0.5, 0.9]]) {
    const h = document.elementFromPoint(r.x + r.width * f[0], r.y + r.height * f[1]);
    if (h && (h === c || c.contains(h))) return true;
  }
  return false;
})()"""


def target(page, report, shot):
    p = json.load(open(report))["processes"][0]
    samples, maps = p["timeline"], p["sampled_maps"]
    ticks = [i for i, x in enumerate(samples) if x["sample"] == "tick" and x["map"] is not None]
    if len(maps) < 3 or len(ticks) < 2:
        fail("%d sampled maps, %d tick samples with one: not a timeline of a changing slot" % (len(maps), len(ticks)))
    b = Browser()
    try:
        b.call("Page.enable")
        b.call("Page.navigate", url="file://" + os.path.abspath(page))
        for _ in range(100):
            if b.js("document.readyState") == "complete":
                break
            time.sleep(0.1)
        if b.js("[...document.querySelectorAll('figure.tlmap')].filter(f => getComputedStyle(f).display != 'none')"
                ".length") != 0:
            fail("a sampled map is shown before any is chosen")
        b.js("document.querySelector('details.samples').open = true")
        # The earliest and the latest tick whose chart point a user can
        # click: a sample's point may lie wholly under a later one's (two
        # samples a few ms apart with the same figures), and a click there
        # is the later sample's.
        clickable = [i for i in ticks if b.js(ON_TOP % i)]
        if len(clickable) < 2:
            fail("%d of %d tick samples have a chart point that is not wholly covered" % (len(clickable), len(ticks)))
        early, late = clickable[0], clickable[-1]
        seen = []
        for i in (early, late):
            want = runs_cells(maps[samples[i]["map"]]["runs"])
            # the sample's row, then its point in the first chart
            b.js("document.querySelectorAll('table.samples tbody tr')[%d].querySelector('a.sample-map')"
                 ".setAttribute('data-probe', 'row')" % i)
            if not b.js("(() => { const a = document.querySelectorAll('figure.timeline-chart circle.point')[%d]"
                        ".closest('a'); if (a) a.setAttribute('data-probe', 'point'); return !!a; })()" % i):
                fail("the point of sample %d links to no map" % i)
            for how in ("row", "point"):
                b.js("location.hash = 'none'")  # no map shown: the click must show it
                b.click("[data-probe=%s]" % how)
                got = b.js(SHOWN)
                if got["id"] is None or got["shown"] != [got["id"]]:
                    fail("after clicking the %s of sample %d: target %s, shown %s" % (how, i, got["id"], got["shown"]))
                if got["cells"] != want:
                    fail("the %s of sample %d (%.3f s) shows '%s', the JSON's map then is '%s'" %
                         (how, i, samples[i]["t"], got["cells"][:80], want[:80]))
                b.js("document.querySelector('[data-probe=%s]').removeAttribute('data-probe')" % how)
            seen.append(want)
        if seen[0] == seen[1]:
            fail("the early and the late sample show the same map")
        data = b.call("Page.captureScreenshot", format="png")["data"]
        open(shot, "wb").write(base64.b64decode(data))
    finally:
        b.close()
    count = lambda cells, k: sum(c.upper() == k for c in cells)
    print("sample %d at %.3f s: %d C and %d free cells; sample %d at %.3f s: %d C and %d free cells" %
          (early, samples[early]["t"], count(seen[0], "C"), count(seen[0], "."),
           late, samples[late]["t"], count(seen[1], "C"), count(seen[1], ".")))


def hostile(page, text):
    t = parse(page, strict=True)
    if t.errors:
        fail("the hostile page is not well formed: " + "; ".join(t.errors[:5]))
    for n in walk(t.root):
        if n["tag"] not in PAGE_TAGS or any(k.startswith("on") for k in n["attrs"]):
            fail("the log's markup became an element: <%s %s>" % (n["tag"], n["attrs"]))
    if text not in find(t.root, "h2")[0]["text"]:
        fail("the log's text is not shown as text: %r" % find(t.root, "h2")[0]["text"])


def png_pixels(path):
    """The pixels of an 8-bit RGB or RGBA PNG, as rows of bytes."""
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        fail("%s is not a PNG" % path)
    at, idat = 8, b""
    while at < len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        body = data[at + 8:at + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
        elif kind == b"IDAT":
            idat += body
        at += 12 + length
    if depth != 8 or colour not in (2, 6):
        fail("PNG of depth %d, colour type %d" % (depth, colour))
    bpp = 3 if colour == 2 else 4
    raw, stride, rows, prev = zlib.decompress(idat), width * bpp, [], bytearray(width * bpp)
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride) if f else ():
            a = line[x - bpp] if x >= bpp else 0
            b, c = prev[x], prev[x - bpp] if x >= bpp else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + ((a + b) >> 1)) & 255
            else:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, bpp, rows


def png(shot, *colours):
    width, height, bpp, rows = png_pixels(shot)
    seen = set()
    for line in rows:
        for x in range(0, len(line), bpp):
            seen.add(line[x:x + 3])
    if len(seen) < 16:
        fail("the screenshot (%dx%d) has %d colours: blank?" % (width, height, len(seen)))
    for c in colours:
        if bytes.fromhex(c) not in seen:
            fail("colour %s is not in the screenshot" % c)
    print("screenshot %dx%d, %d colours" % (width, height, len(seen)))


if __name__ == "__main__":
    {"valid": valid, "content": content, "target": target, "hostile": hostile, "png": png}[sys.argv[1]](*sys.argv[2:])
