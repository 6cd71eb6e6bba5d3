#!/bin/sh
# html.sh - `cebox report --format html` over runs recorded with
# `cebox run --out DIR`, loaded in headless Chromium:
#  - one process (oom_chain malloc) and a multi-process run (sh running
#    forkexec, oom_chain frag and oom_inline): the page is well formed (every
#    element closed), fetches nothing (no http(s) URL, no script, no
#    external resource), and the DOM Chromium renders holds what the JSON
#    report says: a section per process with the table of contents, every
#    site's functions in order with the inlined ones marked, a bar per
#    reason, and the slot map at each site's first failure, cell by cell;
#  - the screenshot is not blank and shows the map's and the chart's colours;
#  - a timeline (heapholes under a state schedule) and a crash
#    (crash_after_oom after an injected failure): the charts (a path and a
#    point per sample, state bands, failure and crash markers, the samples'
#    table), the crash view with both stacks, the summary's newer rows, and
#    screenshots that show the bands and the crash view;
#  - the slot on the timeline (fragment, its slot more fragmented round
#    by round): the sampled maps drawn and linked from every sample as the
#    JSON says, and a real click (DevTools pipe) on an early and a late
#    sample shows that moment's map, with a screenshot of it;
#  - the leak views (--leaks: siteviews grow, peak, pin and pinfree; leaky
#    struct): the leak totals and sites, the growing, peak and pinning sites
#    (at exit and at the slot's least free run, side by side) and the
#    slot's occupants, each figure and stack as in the JSON report, the
#    known sites in their tables, and a screenshot that shows them;
#  - links between failure sites and leak views (siteviews grow with a
#    failure injected into slow_leak, which leaks, grows, is live at the
#    peak and pins): the failed site links to each view's row of its stack
#    and each row back, plain anchors that all resolve in Chromium's DOM
#    (on every page checked, each link's target exists);
#  - a hostile log (markup in the program's path and arguments) adds no
#    element to the page.
# Without chromium (or $CHROMIUM, the browser to use) the test says so and
# is skipped (exit 77).
set -u
B="${top_builddir:-.}"
S="${top_srcdir:-.}"
CEBOX="$B/cebox"
P="$B/tests/programs"
CHECK="$S/tests/html_check.py"
. "${top_srcdir:-.}/tests/testlib.sh"

CHROMIUM=${CHROMIUM:-chromium}
if ! command -v "$CHROMIUM" > /dev/null 2>&1; then
    echo "# SKIP: $CHROMIUM is not installed (apt-get install chromium), so the page cannot be rendered"
    exit 77
fi
show() { sed 's/^/#   /' "$1" | head -"${2:-20}"; }

# browse PAGE OUT [--screenshot]: the rendered DOM of PAGE into OUT, or its
# screenshot; a browser of its own each time (no profile, no network use).
browse() {
    page=$1 out=$2 mode=${3:-}
    profile=$(mktemp -d "$TMP/profile.XXXXXX")
    set -- --headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update \
        --disable-sync --no-first-run --user-data-dir="$profile"
    if [ "$mode" = --screenshot ]; then
        (cd "$TMP" && timeout 120 "$CHROMIUM" "$@" --screenshot="$out" --window-size=1200,5000 "file://$page") \
            > "$TMP/chromium.err" 2>&1
    else
        timeout 120 "$CHROMIUM" "$@" --dump-dom "file://$page" > "$out" 2> "$TMP/chromium.err"
    fi
}

# screenshot NAME WHAT COLOUR...: NAME's page as a screenshot, which must
# show each COLOUR (hex) somewhere and be no blank page; WHAT says what it shows.
screenshot() {
    name=$1 what=$2
    shift 2
    browse "$TMP/$name.html" "$TMP/$name.png" --screenshot
    if python3 "$CHECK" png "$TMP/$name.png" "$@" > "$TMP/check" 2>&1; then
        ok "$name: the screenshot shows $what ($(cat "$TMP/check"))"
    else
        bad "$name: the screenshot"; show "$TMP/check"; show "$TMP/chromium.err"
    fi
}

# report NAME DIR: the HTML and JSON reports of DIR, the page checked
# well formed and offline, then rendered and checked against the JSON.
report() {
    name=$1 dir=$2
    "$CEBOX" report --format html "$dir" > "$TMP/$name.html" 2> "$TMP/rerr"
    st=$?
    "$CEBOX" report --format json "$dir" > "$TMP/$name.json" 2>> "$TMP/rerr"
    if [ "$st" -eq 0 ] && python3 "$CHECK" valid "$TMP/$name.html" > "$TMP/check" 2>&1; then
        ok "$name: the page is well formed and fetches nothing"
    else
        bad "$name: the page is well formed and fetches nothing (report exit $st)"; show "$TMP/check"; show "$TMP/rerr"
    fi
    browse "$TMP/$name.html" "$TMP/$name.dom"
    if [ -s "$TMP/$name.dom" ] && python3 "$CHECK" content "$TMP/$name.dom" "$TMP/$name.json" > "$TMP/check" 2>&1; then
        ok "$name: Chromium's DOM has every process, site, stack, bar and map cell of the JSON report"
    else
        bad "$name: Chromium's DOM against the JSON report"; show "$TMP/check"; show "$TMP/chromium.err"
    fi
}

# ---- one process: 4 failures at 2 sites, a 16-block slot
"$CEBOX" run --quiet --slot-size 1M --out "$TMP/one" "$P/oom_chain" malloc > /dev/null 2>&1
report one "$TMP/one"
# 6 maps: the 4 failures', the peak's and the exit's (besides those
# sampled on the timeline); each reservation's first block has its bar.
sed '/<section class="maps tlmaps"/,/<\/section>/d' "$TMP/one.dom" > "$TMP/one.moments"
if grep -q '<span class="fn">chain_level3</span>' "$TMP/one.dom" && [ "$(grep -c '<rect class="block"' "$TMP/one.moments")" -eq 96 ] &&
    [ "$(grep -c '<rect class="start"' "$TMP/one.moments")" -ge 6 ] && grep -q '<figure class="map" id="p1-m[0-9]*" data-cause="peak">' "$TMP/one.dom" &&
    grep -q '<figure class="map" id="p1-m[0-9]*" data-cause="exit">' "$TMP/one.dom" &&
    [ "$(grep -c '<g class="bar">' "$TMP/one.dom")" -eq 2 ] && ! grep -q 'id="contents"' "$TMP/one.dom"; then
    ok "one: chain_level3 named, 6 maps of 16 cells (peak and exit too) with reservation bars, 2 bars, no contents"
else
    bad "one: chain_level3 named, 6 maps of 16 cells (peak and exit too) with reservation bars, 2 bars, no contents"
fi
# The map's heap colour and the chart's bar colour (html.c) must be drawn.
screenshot one "the page, the map and the chart" 3b7dd8 4a78b0
[ -n "${HTML_KEEP:-}" ] && cp "$TMP/one.html" "$TMP/one.png" "$HTML_KEEP"/

# ---- several processes: sh, forkexec twice (fork and exec), oom_chain
# frag, oom_inline (inlined frames)
"$CEBOX" run --quiet --slot-size 1M --out "$TMP/multi" sh -c \
    "'$P/forkexec' 2 && '$P/oom_chain' frag; '$P/oom_inline'" > /dev/null 2>&1
report multi "$TMP/multi"
procs=$(grep -c '<section class="process"' "$TMP/multi.dom")
toc=$(sed -n '/<nav id="contents">/,/<\/nav>/p' "$TMP/multi.dom")
if [ "$procs" -ge 5 ] && [ "$(printf '%s\n' "$toc" | grep -c 'programs/forkexec [12]</a>')" -eq 2 ] &&
    printf '%s\n' "$toc" | grep -q 'programs/oom_chain frag</a>: 2 failed allocations' &&
    printf '%s\n' "$toc" | grep -q 'programs/oom_inline</a>: 3 failed allocations' && grep -q '<span class="fn">inline_inner</span><span class="inl">inlined</span>' "$TMP/multi.dom" &&
    grep -q 'id="contents"' "$TMP/multi.dom" && grep -q '<span class="fn">chain_level3</span>' "$TMP/multi.dom"; then
    ok "multi: $procs processes in the contents (sh, forkexec 2 and 1, oom_chain frag, oom_inline with their failures); inline_inner marked inlined"
else
    bad "multi: processes ($procs), contents, inlined marks"
fi

# ---- an ending in a signal handler that interrupted cebox: the page says
# the slot and the heap were not read, and shows no zeros for them
"$CEBOX" run --quiet --out "$TMP/unread" "$P/quickexit" signal > /dev/null 2>&1
report unread "$TMP/unread"
if grep -q '<th>slot and heap</th><td>not read (a signal came while cebox held their locks)</td>' "$TMP/unread.dom" &&
    ! grep -q '<th>peak reserved blocks</th>' "$TMP/unread.dom"; then
    ok "unread: the slot and the heap said to be unread, no zeros shown for them"
elif grep -q '<th>peak reserved blocks</th><td class="num">[1-9]' "$TMP/unread.dom"; then
    ok "unread: the signal came outside cebox this time, the figures were read"
else
    bad "unread: the slot and the heap said to be unread, no zeros shown for them"
fi

# ---- the timeline and the crash: heapholes (its heap with holes, a 6 MB
# peak) under a state schedule, so its charts have bands; crash_after_oom,
# whose injected failure makes it die of SIGSEGV (failure and crash
# markers, the crash view with both stacks)
"$CEBOX" run --quiet --state-schedule 0.1s:low,0.2s:normal --sample-interval 50 --out "$TMP/tl" \
    "$P/heapholes" > /dev/null 2>&1
report timeline "$TMP/tl"
bands=$(grep -c '<rect class="state-band" data-state="low"' "$TMP/timeline.dom")
points=$(grep -c '<circle class="point"' "$TMP/timeline.dom")
if [ "$bands" -ge 4 ] && [ "$points" -ge 40 ] && [ "$(grep -c '<path class="series"' "$TMP/timeline.dom")" -eq 4 ] &&
    grep -q '<th>empty committed pages</th>' "$TMP/timeline.dom" && grep -q 'mappings and VirtualAlloc</th>' "$TMP/timeline.dom" &&
    grep -q "<th>cebox's own: bookkeeping at exit</th>" "$TMP/timeline.dom"; then
    ok "timeline: 4 charts, $points points, $bands bands of the low state; the samples' table; the summary's kinds and cebox's own memory"
else
    bad "timeline: 4 charts ($points points, $bands low-state bands), the samples' table, the summary's newer rows"
fi
# The low state's band and the series' colour (charts.c) must be drawn.
screenshot timeline "the charts with their bands" ffd9a8 2a62a8
"$CEBOX" run --quiet --fail-nth 1 --out "$TMP/crash" "$P/crash_after_oom" > /dev/null 2>&1
report crash "$TMP/crash"
if grep -q '<section class="crash" data-signal="SIGSEGV">' "$TMP/crash.dom" &&
    grep -q 'Died of SIGSEGV at <code>format_sample</code> (.*crash_after_oom.c:[0-9]*)' "$TMP/crash.dom" &&
    grep -q 'the injected failure of <code>malloc</code>(48 bytes)' "$TMP/crash.dom" &&
    [ "$(grep -c '<line class="failure-marker"' "$TMP/crash.dom")" -eq 4 ] &&
    [ "$(grep -c '<line class="crash-marker"' "$TMP/crash.dom")" -eq 4 ]; then
    ok "crash: the crash view (SIGSEGV in format_sample after the injected malloc(48)), failure and crash markers"
else
    bad "crash: the crash view and the markers"
fi
screenshot crash "the crash view and the chart" c0392b 4a78b0
[ -n "${HTML_KEEP:-}" ] && cp "$TMP/timeline.html" "$TMP/timeline.png" "$TMP/crash.html" "$TMP/crash.png" "$HTML_KEEP"/

# ---- links: slow_leak's third call fails (injected), its others leak
"$CEBOX" run --quiet --no-occupy --leaks --sample-interval 5 --out "$TMP/links" --fail-size-min 1000 \
    --fail-size-max 1000 --fail-nth 3 "$P/siteviews" grow 8 > /dev/null 2>&1
report links "$TMP/links"
links=$(grep '^links:' "$TMP/check")
site=$(sed -n '/<section class="site" id="p1-s1">/,/<\/section>/p' "$TMP/links.dom")
if [ "$links" = "links: 5 from failure sites to views, 6 back" ] &&
    printf '%s\n' "$site" | grep -q '<a class="to-view" href="#p1-leak-1">leaks</a>' &&
    printf '%s\n' "$site" | grep -q '<a class="to-view" href="#p1-pinpeak-1">pins heap at the peak</a>' &&
    grep -q '<tr class="site" id="p1-growth-1">' "$TMP/links.dom" &&
    grep -q '<a class="to-failure" href="#p1-s1">failure site 1</a> (1 failure)' "$TMP/links.dom"; then
    ok "links: slow_leak's failure site and its leak, growth, peak and pinning rows link to each other ($links)"
else
    bad "links: slow_leak's failure site and its views (${links:-no links line})"; printf '%s\n' "$site" | grep also | show /dev/stdin
fi
# ---- the slot on the timeline: fragment maps one block more each round,
# 60 ms apart, so cebox run's ticks copy a changed map each time; the
# page's sampled maps are checked against the JSON (content), then a real
# click on an early and a late sample's row and point shows the map of
# that moment (its cells as the JSON's, the two different)
"$CEBOX" run --quiet --sample-interval 50 --out "$TMP/frag" "$P/fragment" 8 20 60 > /dev/null 2>&1
report fragment "$TMP/frag"
drawn=$(grep -c '<figure class="map tlmap"' "$TMP/fragment.dom")
if [ "$drawn" -ge 3 ] && grep -q '<a class="sample-map" href="#p1-t' "$TMP/fragment.dom" &&
    grep -q '<a class="point-map" href="#p1-t' "$TMP/fragment.dom"; then
    ok "fragment: $drawn sampled maps drawn, the samples' rows and the charts' points link to them"
else
    bad "fragment: sampled maps drawn ($drawn) and linked"
fi
if python3 "$CHECK" target "$TMP/fragment.html" "$TMP/fragment.json" "$TMP/fragment.png" > "$TMP/check" 2>&1 &&
    python3 "$CHECK" png "$TMP/fragment.png" 2e9a3e e8ebef >> "$TMP/check" 2>&1; then
    ok "fragment: clicking a sample shows the slot then, as in the JSON ($(tr '\n' ';' < "$TMP/check"))"
else
    bad "fragment: clicking a sample shows the slot then"; show "$TMP/check"
fi
[ -n "${HTML_KEEP:-}" ] && cp "$TMP/fragment.html" "$TMP/fragment.png" "$HTML_KEEP"/

# ---- the leak views (--leaks): siteviews grow, peak and pin in one run,
# the slot empty at the start (as tests/siteviews.sh runs them), then
# leaky struct with its image, DLLs and stack in the slot
"$CEBOX" run --quiet --no-occupy --leaks --sample-interval 5 --out "$TMP/sv" sh -c \
    "'$P/siteviews' grow 12; '$P/siteviews' peak; '$P/siteviews' pin; '$P/siteviews' pinfree 12" > /dev/null 2>&1
report siteviews "$TMP/sv"
counts=$(grep '^leak views:' "$TMP/check")
# view CLASS: the rows of the page's leak-view table of that class
view() { sed -n "/<table class=\"leakview $1\">/,/<\/section>/p" "$TMP/siteviews.dom"; }
if printf '%s\n' "$counts" | grep -Eq ' [1-9][0-9]* growing, [1-9][0-9]* at the peak, [1-9][0-9]* pinning' &&
    view growth | grep -q '<span class="fn">slow_leak</span>' && view peak | grep -q '<span class="fn">peak_a</span>' &&
    view peak | grep -q '<span class="fn">peak_b</span>' && view pinning | grep -q '<span class="fn">keep_small</span>' &&
    view pinning-peak | grep -q '<span class="fn">keep_small</span>' && grep -q '<div class="pin-view" data-when="least_free_run">' "$TMP/siteviews.dom" &&
    view leak-sites | grep -q '<span class="fn">slow_leak</span>'; then
    ok "siteviews: slow_leak grows, peak_a and peak_b at the peak, keep_small pins (at exit and at the least free run), as in the JSON (${counts#leak views: })"
else
    bad "siteviews: the growth, peak and pinning tables (${counts:-no counts})"
fi
"$CEBOX" run --quiet --leaks --out "$TMP/leaky" "$P/leaky" struct > /dev/null 2>&1
report leaky "$TMP/leaky"
counts=$(grep '^leak views:' "$TMP/check")
if printf '%s\n' "$counts" | grep -Eq ' [1-9][0-9]* leak sites, .* [3-9][0-9]* occupants' &&
    grep -q '<tr class="occupant" data-kind="image"' "$TMP/leaky.dom" &&
    grep -q '<td data-field="kind" data-value="definite">definitely lost</td>' "$TMP/leaky.dom" &&
    grep -q '<td data-field="kind" data-value="indirect">indirectly lost</td>' "$TMP/leaky.dom"; then
    ok "leaky: definitely and indirectly lost sites with their stacks, the totals and the occupants as in the JSON (${counts#leak views: })"
else
    bad "leaky: the leak sites and the occupants (${counts:-no counts})"
fi
# The committed memory by kind, as the exit summary says it: the image,
# DLLs and stack are their own rows, not "mappings" (the program maps
# nothing itself).
if python3 - "$TMP/leaky.dom" "$TMP/leaky.json" <<'PY'
import json, re, sys
dom = open(sys.argv[1]).read()
s = json.load(open(sys.argv[2]))["processes"][0]["summary"]
def cell(name):
    m = re.search(r"&emsp;%s</th><td class=\"num\">([^<]*)<" % name, dom) or \
        re.search(r"\u2003%s</th><td class=\"num\">([^<]*)<" % name, dom)
    return m.group(1) if m else None
ok = s["peak_committed_mapped_bytes"] == 0 and cell("mappings and VirtualAlloc") == "0 bytes" and \
    s["peak_committed_image_bytes"] > 0 and cell("image and DLLs") not in (None, "0 bytes") and \
    cell("stacks") not in (None, "0 bytes")
sys.exit(0 if ok else 1)
PY
then ok "leaky: committed at the peak by kind: no mappings, the image and DLLs and the stack on rows of their own"
else bad "leaky: committed at the peak by kind (mappings $(grep -o 'mappings and VirtualAlloc</th><td class="num">[^<]*' "$TMP/leaky.dom"))"; fi
# The leak views' head colour (html.c's style) must be drawn.
screenshot leaky "the leak views and the map" f1e4d0 3b7dd8
[ -n "${HTML_KEEP:-}" ] && cp "$TMP/siteviews.html" "$TMP/leaky.html" "$TMP/leaky.png" "$HTML_KEEP"/

# ---- a hostile log: markup in the executable's path and in the arguments
evil='<script>alert(1)</script><img src=x onerror=alert(2)><b>&amp;"'"'"
mkdir -p "$TMP/x<i>y&z"
cp "$P/oom_chain" "$TMP/x<i>y&z/<b>chain"
"$CEBOX" run --quiet --leaks --slot-size 1M --out "$TMP/evil" "$TMP/x<i>y&z/<b>chain" malloc "$evil" > /dev/null 2>&1
"$CEBOX" report --format html "$TMP/evil" > "$TMP/evil.html" 2> "$TMP/rerr"
if python3 "$CHECK" hostile "$TMP/evil.html" "$evil" > "$TMP/check" 2>&1 && grep -q '&lt;script&gt;' "$TMP/evil.html" &&
    grep -q 'x&lt;i&gt;y&amp;z/&lt;b&gt;chain' "$TMP/evil.html"; then
    ok "a hostile log: its markup is shown as text, no element added"
else
    bad "a hostile log: its markup is shown as text"; show "$TMP/check"
fi
browse "$TMP/evil.html" "$TMP/evil.dom"
if [ -s "$TMP/evil.dom" ] && python3 "$CHECK" hostile "$TMP/evil.dom" "$evil" > "$TMP/check" 2>&1; then
    ok "a hostile log: Chromium's DOM has only the page's own elements, the markup as text"
else
    bad "a hostile log: Chromium's DOM"; show "$TMP/check"
fi

# ---- every log of the fuzz corpus: a well-formed page (or a clean refusal)
pages=0 broken=""
for log in "$S"/tests/fuzz/corpus/logread/* "$S"/tests/fuzz/corpus/report/*; do
    "$CEBOX" report --format html "$log" > "$TMP/c.html" 2> /dev/null
    st=$?
    if [ "$st" -gt 1 ] || ! python3 "$CHECK" valid "$TMP/c.html" > /dev/null 2>&1; then
        broken="$broken $(basename "$log")"
    fi
    pages=$((pages + 1))
done
if [ -z "$broken" ]; then
    ok "the fuzz corpus: $pages pages, every one well formed and offline"
else
    bad "the fuzz corpus: broken pages for$broken"
fi
finish
