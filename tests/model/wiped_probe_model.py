#!/usr/bin/env python3
"""Explicit-state model of ringkv's wiped-node probe ("was I a member?") with
an abstract Raft election (pre-vote, durable votes), wipes, restarts, and
asks/answers as messages that can be delayed, reordered and lost.

Rules (--rule):
  main   main's rule (5ce03aa): answers OR-ed per member, only unheard
         members asked, narrow vouch (dirs that answered "asking").
  branch session-11 (s11-wiped5 as merged): latest answer replaces, members
         whose latest answer is "asking" asked again, answers pushed at
         settling, widened vouch (asked_by too), bootstrap (self_new) rule.
  bbfd   branch + bbfd201 (a member ever ASKING or VOUCH counts toward
         FRESH only when every member answered).
  prop   the proposal (DESIGN.md): branch's liveness parts (replace, re-ask,
         push, widened vouch, bootstrap) + every answer carries h = max(term,
         highest pre-vote granted) and HC ("h complete": this process ran the
         replica since its dir began); a settled answer counts toward M only
         with HC (a vouch counts); the asker skips to term H+1 (H = max h of
         the answers) before taking part; HISTORY = voted, a log, or a term
         above the skipped-to floor.
  props  prop hardened for two wipes: FRESH only when every other member
         answered (or by the bootstrap statement); a vouch is no history only
         then; otherwise a vouch counts as a history (AMNESIAC, a rejoin).
  mainh  main's rule with the proposal's safety parts only (what session 13
         builds): h, HC and the skip; a settled answer counts toward M only
         with HC or as a vouch; a vouch's h is not taken (a narrow voucher
         took no part before the asker's dir existed); HISTORY with the floor.
  propv  prop where a vouch's h is not taken (as mainh; what session 13
         builds on the branch's liveness parts).
  prop1  prop, and "asking" answers count toward M too (a single-wipe
         rule: live at R = 5 with one founding member down and no operator
         statement; shown unsafe with two wipes).

Usage (run with `nice`; only the standard library):
  model.py scripts              the hand-written schedules, every rule
                                (-> scripts-output.txt)
  model.py live                 the liveness scenarios, every rule
                                (-> live-output.txt)
  model.py prefix-swarm [SECS] [RULE...]
                                random completions from the schedules'
                                post-wipe states (-> prefix-swarm.txt)
  model.py searches             swarm from scratch (R = 5) and bounded DFS
                                with sleep sets (R = 3) (-> search-results.txt)
  model.py prefixes [SECS] [RULE...]
                                bounded DFS from the post-wipe states (too
                                slow to finish: not quoted)
  model.py search R RULE [WIPES [SECS [RESTARTS]]]
  model.py all                  scripts and live
  model.py check FILE           whether `scripts` prints FILE exactly (the
                                meson test model-wiped_probe, against
                                scripts-expected.txt beside this file)
"""
import collections
import contextlib
import io
import itertools
import random
import sys
import time

RULES = ("main", "branch", "bbfd", "prop", "props", "prop1", "mainh", "propv")
NONE = None

# What each rule does, one flag a part of it (the rules above, part by part):
#   liveness     the branch's liveness parts: a member's latest answer
#                replaces its earlier one (else answers are OR-ed), members
#                whose latest answer is "asking" are asked again, answers
#                pushed to the askers at settling, the widened vouch
#                (asked_by too), the bootstrap (self_new) rule
#   skip         h, HC and the skip: HISTORY = voted or a term above the
#                floor, a FRESH decision moves to term H + 1
#   vouch_no_h   a vouch is a vouch with or without a history, and its h is
#                not taken
#   was_waits    bbfd: a member ever "asking" or vouching counts toward
#                FRESH only when every member answered
#   needs_hc     a settled answer counts toward M only with HC or as a vouch
#   asking_counts  "asking" answers count toward M too
#   all_answered props: FRESH only when every other member answered (or by
#                the bootstrap statement), a vouch a history otherwise, a
#                settled member asked again until it vouches
Rule = collections.namedtuple("Rule", "liveness skip vouch_no_h was_waits needs_hc "
                                      "asking_counts all_answered")
FEATURES = {
    #              liveness skip   vouch_no_h was_waits needs_hc asking all_answered
    "main":   Rule(False,   False, False,     False,    False,   False, False),
    "branch": Rule(True,    False, False,     False,    False,   False, False),
    "bbfd":   Rule(True,    False, False,     True,     False,   False, False),
    "prop":   Rule(True,    True,  False,     False,    True,    False, False),
    "props":  Rule(True,    True,  False,     False,    True,    False, True),
    "prop1":  Rule(True,    True,  False,     False,    True,    True,  False),
    "mainh":  Rule(False,   True,  True,      False,    True,    False, False),
    "propv":  Rule(True,    True,  True,      False,    True,    False, False),
}
assert set(FEATURES) == set(RULES)


# ---------------------------------------------------------------- the state

def new_node(i, dir_, status, boot):
    return {
        "dir": dir_, "st": status, "boot": boot,
        # Raft, durable per dir
        "term": 0, "vote": NONE, "floor": 0,
        # Raft, volatile
        "role": "F", "grants": frozenset(), "pv": 0, "hc": True,
        # the probe (asker side)
        "latest": {}, "orf": {}, "heard": frozenset(), "hist": False, "H": 0, "vhist": False,
        "was": frozenset(), "adir": {}, "asks": {}, "svote": None,
        # the answerer side
        "vouch": frozenset(), "asked_by": {},
    }


class Model:
    def __init__(self, R, rule, boot=(), down=(), late=(), max_term=2, max_wipes=1,
                 max_restarts=0, max_asks=2, loss=True, wipeable=None, campaigners=None,
                 init="first"):
        self.init = init
        self.dbs_rng = None
        assert rule in RULES
        self.R, self.rule, self.f = R, rule, FEATURES[rule]
        self.M = (R - 1) // 2 + 1          # a majority of the others
        self.Q = R // 2 + 1                # a majority of the group
        self.max_term, self.max_wipes = max_term, max_wipes
        self.max_restarts, self.max_asks, self.loss = max_restarts, max_asks, loss
        self.boot, self.down, self.late = set(boot), set(down), set(late)
        self.wipeable = set(range(R)) if wipeable is None else set(wipeable)
        self.campaigners = set(range(R)) if campaigners is None else set(campaigners)

    def initial(self):
        nodes = []
        for i in range(self.R):
            st = "down" if (i in self.down or i in self.late) else "probing"
            nodes.append(new_node(i, 1, st, i in self.boot))
        s = {"nodes": nodes, "bag": (), "leaders": {}, "votes": (), "wipes": 0,
             "restarts": 0, "bad": None, "warn": None}
        if self.init in ("settled", "partial"):
            # a first start already run: every member heard every other
            # one asking (dir 1) and settled fresh at term 0 ("settled"), or
            # all but two, which heard all but one member, asking too
            # ("partial": nodes 1 and 2 still ask, each missing one answer,
            # as in the review's schedule)
            waiting = {1: self.R - 1, 2: self.R - 1} if self.init == "partial" else {}
            for i, n in enumerate(nodes):
                oth = [j for j in range(self.R) if j != i]
                if i in waiting:
                    heard = [j for j in oth if j != waiting[i]]
                    n["heard"] = frozenset(heard)
                    n["orf"] = {j: 1 for j in heard}
                    n["latest"] = {j: (True, False, True) for j in heard}
                    n["adir"] = {j: 1 for j in heard}
                    n["asks"] = {j: 1 for j in heard}
                    continue
                n["st"] = "fresh"
                n["vouch"] = frozenset((j, 1) for j in oth)
                n["asked_by"] = {j: 1 for j in oth}
        return s


def copy_state(s):
    t = dict(s)
    t["nodes"] = [dict(n) for n in s["nodes"]]
    t["leaders"] = dict(s["leaders"])
    return t


def node_mut(n):
    for k in ("latest", "orf", "adir", "asks", "asked_by"):
        n[k] = dict(n[k])


def freeze(v):
    if isinstance(v, dict):
        return tuple(sorted((k, freeze(x)) for k, x in v.items()))
    if isinstance(v, (set, frozenset)):
        return tuple(sorted(v))
    return v


_DICTS = ("latest", "orf", "adir", "asks", "asked_by")
_SETS = ("grants", "heard", "was", "vouch")
_PLAIN = ("dir", "st", "boot", "term", "vote", "floor", "role", "pv", "hc", "hist", "H",
          "svote", "vhist")


def node_key(n):
    return (tuple(n[f] for f in _PLAIN) +
            tuple(tuple(sorted(n[f].items())) for f in _DICTS) +
            tuple(tuple(sorted(n[f])) for f in _SETS))


def state_key(s):
    return (tuple(node_key(n) for n in s["nodes"]), tuple(sorted(s["bag"])),
            tuple(sorted((t, tuple(sorted(v))) for t, v in s["leaders"].items())),
            s["wipes"], s["restarts"])


NAMES = "ABCDEFGH"


def nm(i):
    return NAMES[i]


# ---------------------------------------------------------------- messages
# ("ask", src, dst, sdir)
# ("ans", src, dst, ctx, asking, hist, vouch, h, hc, adir)
# ("pv", src, dst, term)       pre-vote request for `term`
# ("pvr", src, dst, term)      pre-vote granted (rejects are not modelled: lost)
# ("v", src, dst, term)        vote request
# ("vr", src, dst, term, vdir) vote granted by src's dir vdir

def fmt_msg(m):
    k = m[0]
    if k == "ask":
        return "ask %s(dir %d)->%s" % (nm(m[1]), m[3], nm(m[2]))
    if k == "ans":
        fl = [f for f, b in (("ASKING", m[4]), ("HISTORY", m[5]), ("VOUCH", m[6])) if b]
        return "answer %s->%s [%s] term/h=%d%s" % (nm(m[1]), nm(m[2]), "|".join(fl) or "settled",
                                                   m[7], "" if m[8] else " HC=0")
    if k == "pv":
        return "PREVOTE %s->%s t%d" % (nm(m[1]), nm(m[2]), m[3])
    if k == "pvr":
        return "PREVOTE granted %s->%s t%d" % (nm(m[1]), nm(m[2]), m[3])
    if k == "v":
        return "VOTE req %s->%s t%d" % (nm(m[1]), nm(m[2]), m[3])
    if k == "vr":
        return "VOTE granted %s(dir %d)->%s t%d" % (nm(m[1]), m[4], nm(m[2]), m[3])
    return str(m)


# ---------------------------------------------------------------- the rules

class Sim:
    """Transitions over a state (mutated in place; callers copy first)."""

    def __init__(self, model):
        self.m = model
        self.log = None  # list of strings when tracing

    def say(self, text):
        if self.log is not None:
            self.log.append(text)

    def others(self, i):
        return [j for j in range(self.m.R) if j != i]

    def send(self, s, msg):
        s["bag"] = s["bag"] + (msg,)

    # ---- the answerer
    def history(self, n):
        if n["st"] == "amn":
            return True
        if self.m.f.skip:
            return n["vote"] is not NONE or n["term"] > n["floor"]
        return n["term"] > 0

    def answer(self, s, x, a, sdir):
        """x answers an ask from a (dir sdir): the answer message."""
        n = s["nodes"][x]
        f = self.m.f
        asking = n["st"] == "probing"
        hist = self.history(n)
        vouch = False
        if (a, sdir) in n["vouch"] and (hist or f.vouch_no_h):
            hist, vouch = False, True
        h = max(n["term"], n["pv"])
        if asking and f.liveness:
            node_mut(n)
            n["asked_by"][a] = sdir
        return ("ans", x, a, sdir, asking, hist, vouch, h, n["hc"], n["dir"])

    # ---- the asker
    def take(self, s, a, msg):
        n = s["nodes"][a]
        node_mut(n)
        _, x, _, ctx, asking, hist, vouch, h, hc, adir = msg
        f = self.m.f
        n["heard"] = n["heard"] | {x}
        if not f.liveness:
            n["orf"][x] = (n["orf"].get(x, 0) | (1 if asking else 0) | (2 if hist else 0) |
                           (4 if hc or vouch else 0))
        else:
            n["latest"][x] = (asking, vouch, hc)
            if f.was_waits and (asking or vouch):
                n["was"] = n["was"] | {x}
        if asking:
            n["adir"][x] = adir
        if hist:
            n["hist"] = True
        if vouch:
            n["vhist"] = True
        if not (f.vouch_no_h and vouch):
            n["H"] = max(n["H"], h)

    def counts(self, n, x):
        """Whether x's answer, settled, counts toward M for FRESH."""
        f = self.m.f
        if f.liveness:
            asking, vouch, hc = n["latest"][x]
            vouch_or_hc = vouch or hc
        else:  # answers OR-ed: ever "asking", ever HC or a vouch
            asking, vouch_or_hc = n["orf"][x] & 1, n["orf"][x] & 4
        if asking:
            return f.asking_counts
        return (vouch_or_hc or not f.needs_hc) and not (f.was_waits and x in n["was"])

    def decide(self, s, a):
        n = s["nodes"][a]
        f, M, allo = self.m.f, self.m.M, self.m.R - 1
        heard = len(n["heard"])
        if heard >= M:
            if n["hist"]:
                return "AMNESIAC"
            if f.all_answered:
                if heard == allo:
                    return "FRESH"
                if n["vhist"]:
                    return "AMNESIAC"
            else:
                settled = sum(1 for x in n["heard"] if self.counts(n, x))
                if settled >= M or heard == allo:
                    return "FRESH"
        if f.liveness and n["boot"] and not n["hist"] and 1 + heard >= self.m.Q:
            return "FRESH"
        return "WAIT"

    def settle(self, s, a):
        o = self.decide(s, a)
        if o == "WAIT":
            return
        n = s["nodes"][a]
        node_mut(n)
        f = self.m.f
        if o == "AMNESIAC":
            n["st"] = "amn"
            self.say("  %s(dir %d) decides AMNESIAC (rejoins as a new incarnation)" %
                     (nm(a), n["dir"]))
            if f.liveness:
                for x, d in sorted(n["asked_by"].items()):
                    self.send(s, self.answer(s, a, x, d))
            return
        # FRESH
        vouch = set((x, d) for x, d in n["adir"].items())
        if f.liveness:
            vouch |= set(n["asked_by"].items())
        n["vouch"] = frozenset(vouch)
        n["st"] = "fresh"
        n["role"] = "F"
        if f.skip and n["H"] > 0:
            n["term"] = n["H"] + 1
            n["floor"] = n["term"]
            n["vote"] = NONE
        self.say("  %s(dir %d) decides FRESH at term %d%s" % (
            nm(a), n["dir"], n["term"],
            " (skips past H=%d)" % n["H"] if n["H"] and f.skip else ""))
        self.check_fresh(s, a)
        if f.liveness:
            for x, d in sorted(n["asked_by"].items()):
                self.send(s, self.answer(s, a, x, d))
        sv = n["svote"]
        n["svote"] = None
        if sv is not None:
            self.say("  %s steps its stored %s" % (nm(a), fmt_msg(sv)))
            self.raft_receive(s, a, sv)

    # ---- invariants
    def check_fresh(self, s, a):
        """A FRESH decision by a dir whose node's earlier dir voted in a term
        t >= the term it starts at, for a candidate that won t or still can."""
        n = s["nodes"][a]
        for (v, vdir, t, c, cdir) in s["votes"]:
            if v != a or vdir >= n["dir"] or t < n["term"] or (t == n["term"] and
                                                                n["vote"] is not NONE):
                continue
            won = any(l[0] == c for l in s["leaders"].get(t, ()))
            cn = s["nodes"][c]
            live = cn["dir"] == cdir and cn["role"] == "C" and cn["term"] == t
            if won or live:
                if s["warn"] is None:
                    s["warn"] = ("%s(dir %d) settled FRESH at term %d, but its dir %d voted "
                                 "for %s in term %d, which %s" %
                                 (nm(a), n["dir"], n["term"], vdir, nm(c), t,
                                  "it won" if won else "it can still win"))
                self.say("  !! " + s["warn"])

    def became_leader(self, s, c):
        n = s["nodes"][c]
        t = n["term"]
        entry = (c, n["dir"], tuple(sorted(n["grants"])))
        others = s["leaders"].get(t, ())
        s["leaders"][t] = others + (entry,)
        self.say("  %s(dir %d) LEADS term %d with votes %s" % (
            nm(c), n["dir"], t, ",".join("%s(dir %d)" % (nm(v), d) for v, d in entry[2])))
        for o in others:
            if (o[0], o[1]) != (c, n["dir"]):
                harmful = self.alive_quorum(s, o) and self.alive_quorum(s, entry)
                if s["bad"] is None:
                    s["bad"] = ("TWO LEADERS in term %d: %s(dir %d) and %s(dir %d)%s" %
                                (t, nm(o[0]), o[1], nm(c), n["dir"],
                                 "" if harmful else " (harmless: one quorum wholly wiped)"),
                                harmful)
                self.say("  !! " + s["bad"][0])

    def alive_quorum(self, s, entry):
        return any(s["nodes"][v]["dir"] == d for v, d in entry[2])

    # ---- Raft
    def raft_receive(self, s, i, m):
        n = s["nodes"][i]
        if n["st"] in ("down", "amn"):
            return
        kind, src, _, term = m[0], m[1], m[2], m[3]
        if n["st"] == "probing":
            if kind in ("pv", "v"):
                n["svote"] = m  # replica_wiped_filter keeps the last one
            return
        if term > n["term"]:
            if not (kind == "pv" or kind == "pvr"):
                n["term"], n["vote"], n["role"], n["grants"] = term, NONE, "F", frozenset()
        elif term < n["term"] and kind != "pvr":
            return
        if kind == "pv":
            if term > n["term"]:
                n["pv"] = max(n["pv"], term)
                self.send(s, ("pvr", i, src, term))
        elif kind == "pvr":
            if n["role"] == "P" and term == n["term"] + 1:
                n["grants"] = n["grants"] | {src}
                if len(n["grants"]) >= self.m.Q:
                    self.become_candidate(s, i)
        elif kind == "v":
            if n["role"] != "L" and (n["vote"] is NONE or n["vote"] == src):
                n["vote"] = src
                s["votes"] = s["votes"] + ((i, n["dir"], term, src, s["nodes"][src]["dir"]),)
                self.send(s, ("vr", i, src, term, n["dir"]))
        elif kind == "vr":
            if n["role"] == "C" and term == n["term"]:
                n["grants"] = n["grants"] | {(src, m[4])}
                if len(n["grants"]) >= self.m.Q:
                    n["role"] = "L"
                    self.became_leader(s, i)

    def become_candidate(self, s, i):
        n = s["nodes"][i]
        n["term"] += 1
        n["vote"] = i
        n["role"] = "C"
        n["grants"] = frozenset({(i, n["dir"])})
        s["votes"] = s["votes"] + ((i, n["dir"], n["term"], i, n["dir"]),)
        self.say("  %s(dir %d) is a candidate in term %d" % (nm(i), n["dir"], n["term"]))
        for j in self.others(i):
            self.send(s, ("v", i, j, n["term"]))

    # ---- actions
    def can_ask(self, n, x):
        if n["st"] != "probing":
            return False
        if x not in n["heard"]:
            return True
        if self.m.f.all_answered:
            # a settled "no history" answer is not final off the
            # all-answered path: asked again until it is a vouch (a history)
            return not n["latest"][x][1]
        return self.m.f.liveness and n["latest"][x][0]

    def actions(self, s):
        m, out = self.m, []
        for i, n in enumerate(s["nodes"]):
            if n["st"] == "probing":
                for x in self.others(i):
                    if (self.can_ask(n, x) and n["asks"].get(x, 0) < m.max_asks and
                            s["nodes"][x]["st"] != "down"):
                        out.append(("qask", i, x))
            if n["st"] == "down" and i in m.late:
                out.append(("start", i))
            if (n["st"] == "fresh" and n["role"] in ("F", "C", "P") and i in m.campaigners and
                    n["term"] < m.max_term):
                out.append(("campaign", i))
            if n["st"] != "down" and s["wipes"] < m.max_wipes and i in m.wipeable:
                out.append(("wipe", i))
            if n["st"] != "down" and s["restarts"] < m.max_restarts:
                out.append(("restart", i))
        # A lost message is one never delivered: for safety (a property of
        # every prefix) "drop" adds nothing, so the search leaves it out.
        seen_msgs = set()
        for k in range(len(s["bag"])):
            if s["bag"][k] in seen_msgs:
                continue  # a duplicate: the same successor
            seen_msgs.add(s["bag"][k])
            out.append(("deliver", k))
        return out

    def apply(self, s, act):
        """Applies act to a copy of s; returns the new state."""
        s = copy_state(s)
        kind = act[0]
        if kind == "send_ask":
            i, x = act[1], act[2]
            n = s["nodes"][i]
            node_mut(n)
            n["asks"][x] = n["asks"].get(x, 0) + 1
            self.send(s, ("ask", i, x, n["dir"]))
            self.say("%s asks %s (dir %d)" % (nm(i), nm(x), n["dir"]))
        elif kind == "qask":
            # the ask, delivered at once (a delayed ask is an ask sent
            # later); the answer is a message that can be delayed or lost
            i, x = act[1], act[2]
            n = s["nodes"][i]
            node_mut(n)
            n["asks"][x] = n["asks"].get(x, 0) + 1
            self.say("%s asks %s (dir %d)" % (nm(i), nm(x), n["dir"]))
            self.send(s, self.answer(s, x, i, n["dir"]))
        elif kind == "start":
            i = act[1]
            s["nodes"][i]["st"] = "probing"
            self.say("%s starts (empty, dir %d, %s)" % (
                nm(i), s["nodes"][i]["dir"], "bootstrap" if s["nodes"][i]["boot"] else "default flags"))
        elif kind == "campaign":
            i = act[1]
            n = s["nodes"][i]
            n["role"] = "P"
            n["grants"] = frozenset({i})
            self.say("%s pre-votes for term %d" % (nm(i), n["term"] + 1))
            for j in self.others(i):
                self.send(s, ("pv", i, j, n["term"] + 1))
        elif kind == "wipe":
            i = act[1]
            old = s["nodes"][i]
            s["nodes"][i] = new_node(i, old["dir"] + 1, "probing", act[2] if len(act) > 2 else False)
            s["wipes"] += 1
            self.say("%s is WIPED: dir %d replaced by an empty dir %d (%s), asking" % (
                nm(i), old["dir"], old["dir"] + 1,
                "bootstrap" if s["nodes"][i]["boot"] else "default flags"))
        elif kind == "restart":
            i = act[1]
            n = s["nodes"][i]
            node_mut(n)
            s["restarts"] += 1
            n["role"], n["grants"], n["pv"], n["vouch"], n["asked_by"] = "F", frozenset(), 0, frozenset(), {}
            n["svote"] = None
            if n["st"] == "probing":
                for k in ("latest", "orf", "adir", "asks"):
                    n[k] = {}
                n["heard"], n["hist"], n["H"], n["was"] = frozenset(), False, 0, frozenset()
                n["vhist"] = False
            else:
                n["hc"] = False
            self.say("%s restarts (same dir %d; memory lost)" % (nm(i), n["dir"]))
        elif kind in ("deliver", "drop"):
            k = act[1]
            msg = s["bag"][k]
            s["bag"] = s["bag"][:k] + s["bag"][k + 1:]
            if kind == "drop":
                self.say("lost: " + fmt_msg(msg))
            else:
                self.say("deliver: " + fmt_msg(msg))
                self.deliver(s, msg)
        self.prune(s)
        return s

    def prune(self, s):
        """Drops messages whose delivery can change nothing any more (an
        answer to a dir that no longer asks; anything to an amnesiac
        replica): fewer states, the same behaviours."""
        keep = []
        wipes_left = s["wipes"] < self.m.max_wipes
        for m in s["bag"]:
            d = s["nodes"][m[2]]
            if d["st"] == "amn":
                continue
            if m[0] == "ans" and (d["st"] != "probing" or d["dir"] != m[3]):
                continue
            # a Raft message of an older term than its receiver's is a no-op
            # (stale replies are not modelled), unless the receiver may still
            # be wiped (a new dir starts at term 0)
            if (m[0] != "ans" and d["st"] == "fresh" and m[3] < d["term"] and
                    not (wipes_left and m[2] in self.m.wipeable)):
                continue
            if (m[0] == "pvr" and d["st"] == "fresh" and m[3] <= d["term"] and
                    not (wipes_left and m[2] in self.m.wipeable)):
                continue
            keep.append(m)
        if len(keep) != len(s["bag"]):
            s["bag"] = tuple(keep)

    def deliver(self, s, msg):
        kind, src, dst = msg[0], msg[1], msg[2]
        n = s["nodes"][dst]
        if kind == "ask":
            if n["st"] == "down" or msg[3] != s["nodes"][src]["dir"]:
                return
            self.send(s, self.answer(s, dst, src, msg[3]))
        elif kind == "ans":
            if n["st"] != "probing" or msg[3] != n["dir"]:
                return
            self.take(s, dst, msg)
            self.settle(s, dst)
        else:
            self.raft_receive(s, dst, msg)


# ---------------------------------------------------------------- scripts

class Script:
    """Drives a Sim by named steps, printing a readable schedule."""

    def __init__(self, model, title, quiet=False):
        self.sim = Sim(model)
        self.sim.log = []
        self.s = model.initial()
        self.title = title
        self.quiet = quiet
        self.steps = 0

    def flush(self):
        lines, out = self.sim.log, []
        for line in lines:
            # "X asks Y", "deliver: ask ...": folded into the answer's line
            if " asks " in line and not line.startswith(" "):
                continue
            if line.startswith("deliver: ask "):
                continue
            if line.startswith("deliver: answer "):
                line = line[len("deliver: "):]
            out.append(line)
        for line in out:
            self.steps += 1
            if not self.quiet:
                print("    " + line)
        self.sim.log = []

    def _find(self, pred):
        for k, m in enumerate(self.s["bag"]):
            if pred(m):
                return k
        return None

    def act(self, a):
        self.s = self.sim.apply(self.s, a)
        self.flush()

    def ask(self, a, x, deliver_answer=True):
        """a asks x; the ask is delivered; the answer too unless held."""
        n = self.s["nodes"][a]
        if not self.sim.can_ask(n, x):
            return
        self.act(("send_ask", a, x))
        k = self._find(lambda m: m[0] == "ask" and m[1] == a and m[2] == x)
        self.act(("deliver", k))
        if deliver_answer:
            self.answer(x, a)

    def answer(self, x, a):
        """Delivers x's newest answer to a's current dir (older ones, e.g.
        pushes to an earlier dir, stay in flight)."""
        d = self.s["nodes"][a]["dir"]
        k = None
        for j, m in enumerate(self.s["bag"]):
            if m[0] == "ans" and m[1] == x and m[2] == a and m[3] == d:
                k = j
        if k is not None:
            self.act(("deliver", k))

    def deliver(self, kind, src, dst):
        k = self._find(lambda m: m[0] == kind and m[1] == src and m[2] == dst)
        if k is not None:
            self.act(("deliver", k))
        return k is not None

    def drop(self, kind, src, dst):
        k = self._find(lambda m: m[0] == kind and m[1] == src and m[2] == dst)
        if k is not None:
            self.act(("drop", k))

    def hold(self, kind, src, dst):
        """The message stays in flight (delayed): nothing to do."""
        if not self.quiet:
            print("    (held in flight: %s %s->%s)" % (kind, nm(src), nm(dst)))

    def campaign(self, c):
        self.act(("campaign", c))

    def wipe(self, i, boot=False):
        self.act(("wipe", i, boot))

    def status(self):
        parts = []
        for i, n in enumerate(self.s["nodes"]):
            parts.append("%s:%s t%d%s" % (nm(i), {"probing": "asking", "fresh": "member",
                                                    "amn": "amnesiac", "down": "down"}[n["st"]],
                                          n["term"], "" if n["vote"] is NONE else
                                          " voted %s" % nm(n["vote"])))
        return ", ".join(parts)

    def verdict(self):
        s = self.s
        if s["bad"]:
            return "VIOLATION: " + s["bad"][0]
        if s["warn"]:
            return "precursor: " + s["warn"]
        return "safe in this schedule"


def sched_review1(sc):
    """The review's schedule (test_wipe_during_first_start_two_leaders):
    R = 5, A..E = nodes 1..5 (A = 'A', B1 = B, B2 = C, C = D, Y = E).
    A new cluster's first start, default flags; A is wiped during it."""
    A, B1, B2, C, Y = 0, 1, 2, 3, 4
    # Early answers, everybody asking. Y's answers to B1, B2 do not get
    # through; B1 and B2 hear A, C and each other.
    for a, x in ((B1, A), (B1, C), (B2, A), (B2, C), (B1, B2), (B2, B1)):
        sc.ask(a, x)
    for x in (B1, B2, C, Y):
        sc.ask(A, x)
    for x in (A, B1, B2, Y):
        sc.ask(C, x)
    for x in (A, B1, B2, C):
        sc.ask(Y, x)
    # C pre-votes: A and Y grant; C becomes a candidate in term 1; A grants
    # (durable); C's VOTE to Y is delayed, to B1 kept by the probing B1, to
    # B2 lost.
    sc.campaign(C)
    for x in (A, Y):
        sc.deliver("pv", C, x)
        sc.deliver("pvr", x, C)
    sc.deliver("v", C, A)
    sc.deliver("vr", A, C)
    sc.hold("v", C, Y)
    sc.deliver("v", C, B1)
    sc.drop("v", C, B2)
    # A's data dir is wiped; it restarts with default flags. C's answers to
    # it do not get through (C->A down).
    sc.wipe(A)
    sc.ask(A, B1)
    sc.ask(A, B2)
    sc.ask(A, Y)
    # Y->B1 heals: B1 hears Y: every member answered: fresh; it pushes its
    # answer to A (term 0), then steps C's stored vote request.
    sc.ask(B1, Y)
    sc.deliver("vr", B1, C)
    # Y->B2 heals: B2 fresh, pushes.
    sc.ask(B2, Y)
    # A, still asking, asks its slow re-asks (branch) or nothing (main).
    sc.ask(A, B1)
    sc.ask(A, B2)
    # B2 campaigns in term 1: A and Y grant.
    sc.campaign(B2)
    for x in (A, Y):
        sc.deliver("pv", B2, x)
        sc.deliver("pvr", x, B2)
    for x in (A, Y):
        sc.deliver("v", B2, x)
        sc.deliver("vr", x, B2)
    # C's delayed request reaches Y now.
    sc.deliver("v", C, Y)
    sc.deliver("vr", Y, C)


def sched_review2(sc):
    """The review's second schedule (test_vouch_hides_the_vote): the pushes
    lost; A's slow re-asks reach B1 and B2 after they settled, voted (B1)
    and heard term 1 (B2): both vouch for A's new dir."""
    A, B1, B2, C, Y = 0, 1, 2, 3, 4
    for a, x in ((B1, A), (B1, C), (B2, A), (B2, C), (B1, B2), (B2, B1)):
        sc.ask(a, x)
    for x in (B1, B2, C, Y):
        sc.ask(A, x)
    for x in (A, B1, B2, Y):
        sc.ask(C, x)
    for x in (A, B1, B2, C):
        sc.ask(Y, x)
    sc.campaign(C)
    for x in (A, Y):
        sc.deliver("pv", C, x)
        sc.deliver("pvr", x, C)
    sc.deliver("v", C, A)
    sc.deliver("vr", A, C)
    sc.hold("v", C, Y)
    sc.deliver("v", C, B1)
    sc.wipe(A)
    sc.ask(A, B1)
    sc.ask(A, B2)
    sc.ask(A, Y)
    # B1 settles; its push to A is lost; it steps C's stored request.
    sc.ask(B1, Y)
    sc.drop("ans", B1, A)
    sc.deliver("vr", B1, C)
    # B2 settles (push lost) and hears term 1 (C's vote request, late).
    sc.ask(B2, Y)
    sc.drop("ans", B2, A)
    sc.deliver("v", C, B2)
    # A's slow re-asks to B1 and B2.
    sc.ask(A, B1)
    sc.ask(A, B2)
    sc.campaign(B2)   # B2 at term 1 (voted C): pre-votes term 2; the point
    #                  here is A settling FRESH at term 0 after voting in 1
    sc.deliver("v", C, Y)
    sc.deliver("vr", Y, C)


def sched_snapshot(sc):
    """The review's "snapshot, not a promise" (R = 5, older than the
    branch): X = A campaigns term 1 in a settled new group; W = B grants;
    W is wiped; W's new dir asks Y = C, Z = D, V = E, who answer "settled,
    no history"; then Y grants X's delayed request."""
    X, W, Y, Z, V = 0, 1, 2, 3, 4
    # a new cluster's first start: everybody hears everybody asking, then
    # the members settle (all answered).
    for a in range(5):
        for x in range(5):
            if a != x:
                sc.ask(a, x, deliver_answer=False)
    for a in range(5):
        for x in range(5):
            if a != x:
                sc.answer(x, a)
    sc.campaign(X)
    for x in (W, Y):
        sc.deliver("pv", X, x)
        sc.deliver("pvr", x, X)
    sc.deliver("v", X, W)
    sc.deliver("vr", W, X)
    sc.hold("v", X, Y)
    sc.drop("v", X, Z)
    sc.drop("v", X, V)
    sc.wipe(W)
    for x in (Y, Z, V):
        sc.ask(W, x)
    # Y grants X's delayed request: X leads term 1 with X, W's old dir, Y.
    sc.deliver("v", X, Y)
    sc.deliver("vr", Y, X)
    # Z campaigns: W's new dir and V grant.
    sc.campaign(Z)
    for x in (W, V):
        sc.deliver("pv", Z, x)
        sc.deliver("pvr", x, Z)
    for x in (W, V):
        sc.deliver("v", Z, x)
        sc.deliver("vr", x, Z)


def sched_phase_e_stuck(sc):
    """Phase E (R = 5): node 2 (B) never up, A, D, E bootstrap, C default.
    C starts with A; each hears the other asking. D and E come; A, D, E
    settle by the statement and elect D. C's re-asks reach them after the
    election: they vouch (widened: C asked them while they asked)."""
    A, B, C, D, E = 0, 1, 2, 3, 4
    sc.act(("start", A))
    sc.act(("start", C))
    sc.ask(C, A)
    sc.ask(A, C)
    sc.act(("start", D))
    sc.act(("start", E))
    sc.ask(C, D)
    sc.ask(C, E)
    for a in (A, D, E):
        for x in (A, C, D, E):
            if a != x:
                sc.ask(a, x)
    sc.drop("ans", A, C)
    sc.drop("ans", D, C)
    sc.drop("ans", E, C)
    sc.campaign(D)
    for x in (A, E):
        sc.deliver("pv", D, x)
        sc.deliver("pvr", x, D)
    for x in (A, E):
        sc.deliver("v", D, x)
        sc.deliver("vr", x, D)
    for _ in range(2):
        for x in (A, D, E):
            sc.ask(C, x)


def sched_two_wipes_prevote(sc):
    """Two wipes at R = 5 (a known limit of prop): X = A collects its
    pre-votes slowly; W = B grants, then Y = C grants and is wiped; Y's new
    dir asks and settles fresh on three 'settled, no history' answers taken
    before W granted; X becomes a candidate in term 1, W votes and is
    wiped; W's new dir hears Y's new dir (h = 0) and two members that never
    saw term 1 (h = 0)."""
    X, W, Y, Z, V = 0, 1, 2, 3, 4
    for a in range(5):
        for x in range(5):
            if a != x:
                sc.ask(a, x, deliver_answer=False)
    for a in range(5):
        for x in range(5):
            if a != x:
                sc.answer(x, a)
    sc.campaign(X)
    sc.deliver("pv", X, Y)       # Y grants the pre-vote for term 1
    sc.deliver("pvr", Y, X)
    sc.hold("pv", X, W)
    sc.wipe(Y)
    for x in (W, Z, V):          # W answers before it sees X's pre-vote
        sc.ask(Y, x)
    sc.deliver("pv", X, W)
    sc.deliver("pvr", W, X)      # X: candidate in term 1
    sc.deliver("v", X, W)
    sc.deliver("vr", W, X)
    sc.hold("v", X, Z)
    sc.drop("v", X, V)
    sc.drop("v", X, Y)
    sc.wipe(W)
    for x in (Y, Z, V):
        sc.ask(W, x)
    sc.deliver("v", X, Z)        # X leads term 1: X, W's old dir, Z
    sc.deliver("vr", Z, X)
    sc.campaign(V)               # V leads term 1 with W's and Y's new dirs
    for x in (W, Y):
        sc.deliver("pv", V, x)
        sc.deliver("pvr", x, V)
    for x in (W, Y):
        sc.deliver("v", V, x)
        sc.deliver("vr", x, V)


def sched_doc_two_wipes(sc):
    """The reverted doc's R = 5 case: {A, B, C} elected A and A is down
    now; B and C wiped; D and E never saw anything. B's and C's new dirs
    ask; four answers would be every member, three are not."""
    A, B, C, D, E = 0, 1, 2, 3, 4
    for a in range(5):
        for x in range(5):
            if a != x:
                sc.ask(a, x, deliver_answer=False)
    for a in range(5):
        for x in range(5):
            if a != x:
                sc.answer(x, a)
    sc.campaign(A)
    for x in (B, C):
        sc.deliver("pv", A, x)
        sc.deliver("pvr", x, A)
    for x in (B, C):
        sc.deliver("v", A, x)
        sc.deliver("vr", x, A)
    for x in (D, E):
        sc.drop("pv", A, x)
        sc.drop("v", A, x)
    sc.wipe(B)
    sc.wipe(C)
    # A is down from here: no message from or to it.
    for a, others in ((B, (C, D, E)), (C, (B, D, E))):
        for x in others:
            sc.ask(a, x)
    for a, others in ((B, (C,)), (C, (B,))):
        for x in others:
            sc.ask(a, x)
    sc.campaign(D)
    for x in (B, C):
        sc.deliver("pv", D, x)
        sc.deliver("pvr", x, D)
    for x in (B, C):
        sc.deliver("v", D, x)
        sc.deliver("vr", x, D)


SCRIPTS = [
    ("review schedule 1 (wiped during first start; pushes)", 5, sched_review1,
     dict(max_wipes=1)),
    ("review schedule 2 (vouch hides the vote)", 5, sched_review2, dict(max_wipes=1)),
    ("snapshot, not a promise (settled 'no history' answers)", 5, sched_snapshot,
     dict(max_wipes=1)),
    ("two wipes during one pre-vote round (a limit of prop)", 5, sched_two_wipes_prevote,
     dict(max_wipes=2)),
    ("the reverted doc's two-wipe case ({A,B,C} elected A; B, C wiped; A down)", 5,
     sched_doc_two_wipes, dict(max_wipes=2)),
]


def run_scripts(rules=RULES, verbose_rules=None):
    for title, R, fn, kw in SCRIPTS:
        print("=" * 78)
        print("SCHEDULE: %s  (R = %d)" % (title, R))
        print(fn.__doc__.strip())
        for rule in rules:
            verbose = verbose_rules is None or rule in verbose_rules
            sc = Script(Model(R, rule, **kw), title, quiet=not verbose)
            if verbose:
                print("  --- rule %s:" % rule)
            fn(sc)
            print("  [%s] %s | end: %s" % (rule, sc.verdict(), sc.status()))


# ---------------------------------------------------------------- search

def bfs(model, max_states, max_depth, deadline):
    """Breadth-first over the model's actions; returns (result, states,
    depth, trace of the first violation or None)."""
    sim = Sim(model)
    s0 = model.initial()
    seen = {state_key(s0): None}
    parent = {}
    frontier = [s0]
    depth = 0
    states = 1
    while frontier and depth < max_depth:
        nxt = []
        for s in frontier:
            for a in sim.actions(s):
                t = sim.apply(s, a)
                k = state_key(t)
                if k in seen:
                    continue
                seen[k] = (state_key(s), a)
                states += 1
                if t["bad"] and t["bad"][1]:
                    return ("violation", states, depth + 1, rebuild(model, seen, k))
                nxt.append(t)
                if states >= max_states or time.time() > deadline:
                    return ("bound", states, depth + 1, None)
        frontier = nxt
        depth += 1
    return ("exhausted" if not frontier else "depth", states, depth, None)


def rebuild(model, seen, k):
    acts = []
    while seen[k] is not None:
        pk, a = seen[k]
        acts.append(a)
        k = pk
    acts.reverse()
    return replay(model, acts)


def replay(model, acts):
    sim = Sim(model)
    sim.log = []
    s = model.initial()
    for a in acts:
        s = sim.apply(s, a)
    return sim.log


def random_search(model, runs, steps, seed, deadline, bias=None):
    """Random walks; returns (violations found, runs done, first trace)."""
    sim = Sim(model)
    rng = random.Random(seed)
    found, first, done, warned = 0, None, 0, 0
    for r in range(runs):
        if time.time() > deadline:
            break
        done += 1
        s = model.initial()
        acts = []
        for _ in range(steps):
            acts_here = sim.actions(s)
            if not acts_here:
                break
            # weights: deliver more often than anything else; wipes rare
            w = []
            for a in acts_here:
                k = a[0]
                w.append({"deliver": 6, "drop": 1, "send_ask": 3, "campaign": 1,
                          "wipe": 0.4, "restart": 0.2, "start": 1}[k])
            a = rng.choices(acts_here, w)[0]
            acts.append(a)
            s = sim.apply(s, a)
            if s["bad"] and s["bad"][1]:
                found += 1
                if first is None or len(acts) < len(first):
                    first = list(acts)
                break
        if s["warn"]:
            warned += 1
    return found, done, (replay(model, shrink(model, first)) if first else None), warned


def violates(model, acts):
    sim = Sim(model)
    s = model.initial()
    for a in acts:
        if a not in sim.actions(s):
            return False
        s = sim.apply(s, a)
        if s["bad"] and s["bad"][1]:
            return True
    return False


def shrink(model, acts):
    """Greedy: drop actions while the schedule still violates."""
    if acts is None:
        return None
    changed = True
    while changed:
        changed = False
        for i in range(len(acts) - 1, -1, -1):
            cand = acts[:i] + acts[i + 1:]
            # a deliver/drop index refers to bag positions: re-map by content
            if violates_loose(model, cand):
                acts = cand
                changed = True
    return acts_by_content(model, acts)


def violates_loose(model, acts):
    return replay_content(model, acts) is not None


def replay_content(model, acts):
    """Replays actions, re-mapping message indices by message content
    (acts may carry ("deliver", k, msg))."""
    sim = Sim(model)
    s = model.initial()
    for a in acts:
        if a[0] in ("deliver", "drop") and len(a) == 3:
            try:
                k = s["bag"].index(a[2])
            except ValueError:
                return None
            a = (a[0], k)
        if a not in sim.actions(s):
            return None
        s = sim.apply(s, a)
        if s["bad"] and s["bad"][1]:
            return s
    return None


def acts_by_content(model, acts):
    sim = Sim(model)
    s = model.initial()
    out = []
    for a in acts:
        if a[0] in ("deliver", "drop") and len(a) == 3:
            a = (a[0], s["bag"].index(a[2]))
        out.append(a)
        s = sim.apply(s, a)
    return out


def random_search_content(model, runs, steps, seed, deadline):
    """As random_search, but actions on messages carry the message (so the
    trace can be shrunk)."""
    sim = Sim(model)
    rng = random.Random(seed)
    found, first, done, warned = 0, None, 0, 0
    weights = {"deliver": 6, "drop": 1, "send_ask": 3, "campaign": 1, "wipe": 0.4,
               "restart": 0.2, "start": 1}
    for r in range(runs):
        if time.time() > deadline:
            break
        done += 1
        s = model.initial()
        acts = []
        for _ in range(steps):
            here = sim.actions(s)
            if not here:
                break
            a = rng.choices(here, [weights[x[0]] for x in here])[0]
            rec = (a[0], a[1], s["bag"][a[1]]) if a[0] in ("deliver", "drop") else a
            acts.append(rec)
            s = sim.apply(s, a)
            if s["bad"] and s["bad"][1]:
                found += 1
                if first is None or len(acts) < len(first):
                    first = list(acts)
                break
        if s["warn"]:
            warned += 1
    trace = None
    if first:
        small = shrink_content(model, first)
        sim2 = Sim(model)
        sim2.log = []
        st = model.initial()
        for a in small:
            if a[0] in ("deliver", "drop"):
                a = (a[0], st["bag"].index(a[2]))
            st = sim2.apply(st, a)
        trace = sim2.log
    return found, done, trace, warned


def shrink_content(model, acts):
    changed = True
    while changed:
        changed = False
        for i in range(len(acts) - 1, -1, -1):
            cand = acts[:i] + acts[i + 1:]
            if replay_content(model, cand) is not None:
                acts = cand
                changed = True
    return acts


def dfs(model, max_states, max_depth, deadline, seed=None):
    """Depth-first over the actions with a visited set (a state is
    explored again only when reached at a smaller depth). Returns (result,
    states, trace of the first harmful violation or None)."""
    sim = Sim(model)
    rng = random.Random(seed) if seed is not None else None
    s0 = model.initial()
    seen = {state_key(s0): 0}
    stack = [(s0, None, iter(order(sim.actions(s0), rng)))]
    path = []
    states = 1
    while stack:
        s, _, it = stack[-1]
        a = next(it, None)
        if a is None:
            stack.pop()
            if path:
                path.pop()
            continue
        t = sim.apply(s, a)
        depth = len(stack)
        if t["bad"] and t["bad"][1]:
            return ("violation", states, replay(model, path + [a]))
        if depth >= max_depth:
            continue
        k = state_key(t)
        if k in seen:
            continue
        seen[k] = depth
        states += 1
        if states >= max_states or time.time() > deadline:
            return ("bound", states, None)
        path.append(a)
        stack.append((t, a, iter(order(sim.actions(t), rng))))
    return ("exhausted", states, None)


def footprint(a):
    k = a[0]
    if k == "deliver":
        return {a[1][2]}
    if k == "qask":
        return {a[1], a[2]}
    if k == "wipe":
        return {a[1], "wipes"}
    if k == "restart":
        return {a[1], "restarts"}
    return {a[1]}


def content_actions(s, acts):
    return [("deliver", s["bag"][a[1]]) if a[0] == "deliver" else a for a in acts]


def dfs_por(model, max_states, max_depth, deadline, start=None, prefix=None):
    """Depth-first with sleep sets (partial-order reduction: actions on
    disjoint nodes commute) and state caching with the sleep set stored
    (a revisit explores only what the earlier visit slept on). Returns
    (result, states, transitions, trace)."""
    sim = Sim(model)
    s0 = model.initial() if start is None else start
    visited = {}
    states = trans = 0
    path = []
    result = ["exhausted"]

    def run(s, sleep, depth):
        nonlocal states, trans
        k = state_key(s)
        old = visited.get(k)
        if old is not None:
            if old[0] <= sleep and old[1] <= depth:
                return None
            if old[1] <= depth:
                sleep = sleep & old[0]
        visited[k] = (frozenset(sleep), depth)
        states += 1
        if states >= max_states or time.time() > deadline:
            result[0] = "bound"
            raise StopIteration
        if depth >= max_depth:
            result[0] = "depth-bounded"
            return None
        acts = content_actions(s, sim.actions(s))
        acts.sort(key=lambda a: {"deliver": 0, "qask": 1, "campaign": 2, "wipe": 3,
                                 "restart": 4, "start": 5}[a[0]])
        done = set(sleep)
        for a in acts:
            if a in done:
                continue
            idx = a if a[0] != "deliver" else ("deliver", s["bag"].index(a[1]))
            t = sim.apply(s, idx)
            trans += 1
            path.append(idx)
            if t["bad"] and t["bad"][1]:
                return list(path)
            fa = footprint(a)
            nsleep = frozenset(b for b in done if not (footprint(b) & fa))
            r = run(t, nsleep, depth + 1)
            if r:
                return r
            path.pop()
            done.add(a)
        return None

    sys.setrecursionlimit(10000)
    try:
        found = run(s0, frozenset(), 0)
    except StopIteration:
        found = None
    if found:
        if prefix is None:
            return ("violation", states, trans, replay(model, found))
        sim.log = []
        t = s0
        for a in found:
            t = sim.apply(t, a)
        return ("violation", states, trans, prefix + ["-- from here the search's schedule:"] +
                sim.log)
    return (result[0], states, trans, None)


def dbs(model, budget, max_depth, deadline, max_states=10 ** 8):
    """Delay-bounded search: messages are delivered oldest first; a
    schedule may deviate at most `budget` times, each deviation parking
    the oldest message (held, released at any later point: delivered next)
    or losing it. Between deliveries: a probing member's tick (it asks
    every member it may ask), a campaign, a wipe. State caching keyed on
    the state and the budget left. Returns (result, states, trace)."""
    sim = Sim(model)
    s0 = model.initial()
    s0["parked"] = ()
    seen = {}
    states = 0
    path = []
    result = ["exhausted"]

    def acts(s, left):
        out = []
        if s["bag"]:
            out.append(("deliver", 0))
            if left:
                out.append(("park",))
                out.append(("lose",))
        for m in s["parked"]:
            out.append(("release", m))
        for a in sim.actions(s):
            if a[0] in ("campaign", "wipe", "start", "restart"):
                out.append(a)
        for i, n in enumerate(s["nodes"]):
            if n["st"] == "probing" and any(
                    sim.can_ask(n, x) and n["asks"].get(x, 0) < model.max_asks and
                    s["nodes"][x]["st"] != "down" for x in sim.others(i)):
                out.append(("tick", i))
        return out

    def step(s, a):
        k = a[0]
        if k == "park":
            t = copy_state(s)
            t["parked"] = s["parked"] + (s["bag"][0],)
            t["bag"] = s["bag"][1:]
            sim.say("held: " + fmt_msg(s["bag"][0]))
            return t, 1
        if k == "lose":
            t = copy_state(s)
            t["bag"] = s["bag"][1:]
            sim.say("lost: " + fmt_msg(s["bag"][0]))
            return t, 1
        if k == "release":
            t = copy_state(s)
            pk = list(s["parked"])
            pk.remove(a[1])
            t["parked"] = tuple(pk)
            t["bag"] = (a[1],) + s["bag"]
            sim.say("released: " + fmt_msg(a[1]))
            t = sim.apply(t, ("deliver", 0))
            return t, 0
        if k == "tick":
            i = a[1]
            t = s
            n = s["nodes"][i]
            for x in sim.others(i):
                n = t["nodes"][i]
                if (sim.can_ask(n, x) and n["asks"].get(x, 0) < model.max_asks and
                        t["nodes"][x]["st"] != "down"):
                    t = sim.apply(t, ("qask", i, x))
            return t, 0
        return sim.apply(s, a), 0

    def key(s, left):
        return (state_key(s), tuple(sorted(s["parked"])), left, tuple(s["bag"]))

    def run(s, left, depth):
        nonlocal states
        k = key(s, left)
        if k in seen:
            return None
        seen[k] = True
        states += 1
        if states >= max_states or time.time() > deadline:
            result[0] = "bound"
            raise StopIteration
        if depth >= max_depth:
            result[0] = "depth-bounded"
            return None
        here = acts(s, left)
        if model.dbs_rng is not None:
            model.dbs_rng.shuffle(here)
        for a in here:
            t, cost = step(s, a)
            if "parked" not in t:
                t["parked"] = s["parked"]
            path.append(a)
            if t["bad"] and t["bad"][1]:
                return list(path)
            r = run(t, left - cost, depth + 1)
            if r:
                return r
            path.pop()
        return None

    sys.setrecursionlimit(20000)
    try:
        found = run(s0, budget, 0)
    except StopIteration:
        found = None
    if not found:
        return (result[0], states, None)
    sim.log = []
    s = model.initial()
    s["parked"] = ()
    for a in found:
        t, _ = step(s, a)
        if "parked" not in t:
            t["parked"] = s["parked"]
        s = t
    return ("violation", states, sim.log)


def order(acts, rng):
    # deliveries first: they close the schedules the violations need
    acts = sorted(acts, key=lambda a: {"deliver": 0, "qask": 1, "campaign": 2, "wipe": 3,
                                       "drop": 4, "restart": 5, "start": 6}[a[0]])
    if rng is not None:
        rng.shuffle(acts)
    return acts


def swarm(model, deadline, seed, steps=220, start=None):
    """Swarm random testing: each run draws its own action weights and a
    set of slow links (a message on a slow link is delivered rarely), so
    that odd interleavings (a vote request held across a wipe, an answer
    taken before a pre-vote) come up. Returns (runs, harmful, precursor
    runs, shortest shrunk trace)."""
    sim = Sim(model)
    rng = random.Random(seed)
    R = model.R
    runs = bad = warned = 0
    first = None
    while time.time() < deadline:
        runs += 1
        w = {"deliver": rng.uniform(2, 10), "drop": rng.uniform(0, 2),
             "qask": rng.uniform(0.5, 6), "campaign": rng.uniform(0.2, 3),
             "wipe": rng.uniform(0.05, 1), "restart": rng.uniform(0, 0.5),
             "start": 1.0, "send_ask": 1.0}
        frac = rng.uniform(0.1, 0.5)
        slow = set((a, b) for a in range(R) for b in range(R)
                   if a != b and rng.random() < frac)
        heal = rng.randrange(min(30, steps - 1), steps)
        s = model.initial() if start is None else start
        acts = []
        for step in range(steps):
            if step == heal:
                slow = set()
            here = sim.actions(s)
            if not here:
                break
            ws = []
            for a in here:
                x = w[a[0]]
                if a[0] == "wipe":
                    n = s["nodes"][a[1]]
                    x *= 20 if n["vote"] is not NONE and n["vote"] != a[1] else 0.1
                if a[0] == "deliver":
                    m = s["bag"][a[1]]
                    if (m[1], m[2]) in slow:
                        x *= 0.005
                ws.append(x)
            a = rng.choices(here, ws)[0]
            acts.append((a[0], a[1], s["bag"][a[1]]) if a[0] in ("deliver", "drop") else a)
            s = sim.apply(s, a)
            if s["bad"] and s["bad"][1]:
                bad += 1
                if first is None or len(acts) < len(first):
                    first = list(acts)
                break
        if s["warn"]:
            warned += 1
    trace = None
    if first:
        small = first if start is not None else shrink_content(model, first)
        sim2 = Sim(model)
        sim2.log = []
        st = model.initial() if start is None else start
        for a in small:
            if a[0] in ("deliver", "drop"):
                a = (a[0], st["bag"].index(a[2]))
            st = sim2.apply(st, a)
        trace = sim2.log
    return runs, bad, warned, trace


# ---------------------------------------------------------------- liveness

def fair_run(model, seed, max_steps=4000):
    """A fair run with no loss and no wipe: messages delivered in random
    order, asks re-sent every 'tick' as the rule says, and when no message
    is in flight and no leader is known, one member (at random) campaigns.
    Returns (leader?, probing nodes left, amnesiac nodes, steps)."""
    sim = Sim(model)
    rng = random.Random(seed)
    s = model.initial()
    late = sorted(model.late)
    tick = 0
    for step in range(max_steps):
        tick += 1
        if late and tick % 7 == 0:
            i = late.pop(0)
            s = sim.apply(s, ("start", i))
        if s["bag"] and rng.random() < 0.85:
            s = sim.apply(s, ("deliver", rng.randrange(len(s["bag"]))))
            continue
        # a tick: asks (unbounded here), then maybe an election timeout
        for i, n in enumerate(s["nodes"]):
            if n["st"] == "probing":
                for x in sim.others(i):
                    if sim.can_ask(n, x) and rng.random() < 0.5:
                        s = sim.apply(s, ("send_ask", i, x))
        leader = any(s["nodes"][l[0]]["role"] == "L" and s["nodes"][l[0]]["dir"] == l[1]
                     for ls in s["leaders"].values() for l in ls)
        probing = [i for i, n in enumerate(s["nodes"]) if n["st"] == "probing"]
        if leader and not probing and not late:
            break
        if not leader and not s["bag"]:
            cands = [i for i, n in enumerate(s["nodes"]) if n["st"] == "fresh"]
            if cands:
                s = sim.apply(s, ("campaign", rng.choice(cands)))
    leader = any(s["nodes"][l[0]]["role"] == "L" and s["nodes"][l[0]]["dir"] == l[1]
                 for ls in s["leaders"].values() for l in ls)
    probing = [nm(i) for i, n in enumerate(s["nodes"]) if n["st"] == "probing"]
    amn = [nm(i) for i, n in enumerate(s["nodes"]) if n["st"] == "amn"]
    return leader, probing, amn, s["bad"]


LIVE = [
    ("first start, all up, default flags (settling a moment apart)", 3,
     dict(), None),
    ("first start, all up, default flags (settling a moment apart)", 5,
     dict(), None),
    ("first start, one member down, the rest bootstrap", 3,
     dict(down=(2,), boot=(0, 1)), None),
    ("first start, one member down, the rest bootstrap", 5,
     dict(down=(1,), boot=(0, 2, 3, 4)), None),
    ("phase E: B never up, A D E bootstrap, C default (C starts with A)", 5,
     dict(down=(1,), boot=(0, 3, 4), late=(3, 4)), None),
    ("phase C: A B bootstrap, C never up, then C starts late, default flags", 3,
     dict(boot=(0, 1), late=(2,)), None),
    ("late default-flag member, the others default (it starts last)", 5,
     dict(late=(4,)), None),
    ("first start, one member down, every member default flags", 3,
     dict(down=(2,)), None),
    ("first start, one member down, every member default flags", 5,
     dict(down=(1,)), None),
]


def run_live(rules=RULES, seeds=40):
    print("=" * 78)
    print("LIVENESS: fair runs (no loss, no wipe; asks re-sent each tick as the rule says;")
    print("an election timeout when nothing is in flight). 'leader' = a leader elected;")
    print("'asking' = runs that ended with a member still asking (waits for ever);")
    print("'rejoin' = runs where some member came back amnesiac (needs the leader to rejoin it).")
    for title, R, kw, _ in LIVE:
        print("-- %s (R = %d)" % (title, R))
        for rule in rules:
            lead = stuck = rej = 0
            for seed in range(seeds):
                model = Model(R, rule, max_term=10 ** 6, max_wipes=0, loss=False, **kw)
                leader, probing, amn, bad = fair_run(model, seed)
                lead += leader
                stuck += bool(probing)
                rej += bool(amn)
            print("   %-6s leader %2d/%d, asking at end %2d/%d, rejoin %2d/%d" %
                  (rule, lead, seeds, stuck, seeds, rej, seeds))


# ---------------------------------------------------------------- main

def run_search(R, rule, wipes, seconds, seed=1, max_states=3000000, restarts=0,
               quiet=False, max_term=2, max_asks=2, depth=40):
    deadline = time.time() + seconds
    model = Model(R, rule, max_term=max_term, max_wipes=wipes, max_restarts=restarts,
                  max_asks=max_asks)
    bounds = "wipes<=%d restarts<=%d terms<=%d asks<=%d/pair" % (wipes, restarts, max_term,
                                                                 max_asks)
    if R == 3:
        res, states, trace = dfs(model, max_states, depth, deadline)
        print("  R=%d %-6s %s depth<=%d: DFS %s, %d states, %.0f s" % (
            R, rule, bounds, depth, res, states, seconds - max(0, deadline - time.time())))
    else:
        runs, bad, warned, trace = swarm(model, deadline, seed)
        print("  R=%d %-6s %s: swarm %d runs of <= 150 steps, %d harmful violations, %d runs "
              "with a precursor" % (R, rule, bounds, runs, bad, warned))
    sys.stdout.flush()
    if trace and not quiet:
        print("     shortest violation found (shrunk):")
        for line in trace:
            print("       " + line)
    return trace


class _Stop(Exception):
    pass


def prefix_state(model, fn, stop_after_wipes):
    """Runs the hand schedule fn until it has made stop_after_wipes wipes;
    returns (state, its log)."""
    sc = Script(model, "", quiet=True)
    seen = []
    orig = sc.act

    def act(a):
        orig(a)
        seen.extend(sc.sim.log)
        if a[0] == "wipe" and sc.s["wipes"] >= stop_after_wipes:
            raise _Stop()
    sc.act = act
    lines = []
    sc.flush = lambda: (lines.extend(sc.sim.log), sc.sim.log.clear())
    try:
        fn(sc)
    except _Stop:
        pass
    return sc.s, lines


def run_from_prefixes(secs=60, rules=RULES):
    """Exhaustive (within bounds) search from the states right after the
    wipe in the hand schedules: every interleaving of what is in flight,
    further asks (<= 2 per pair), campaigns up to term 2 by anyone."""
    print("=" * 78)
    print("SEARCH FROM THE HAND SCHEDULES' POST-WIPE STATES (DFS + sleep sets, terms <= 2,")
    print("asks <= 2 per pair, no further wipe unless the schedule has a second one)")
    for title, R, fn, kw in SCRIPTS:
        wipes = kw.get("max_wipes", 1)
        for rule in rules:
            m = Model(R, rule, max_term=2, max_wipes=wipes, max_asks=2,
                      campaigners=(0, 2, 3, 4))
            s0, lines = prefix_state(m, fn, wipes)
            t = time.time()
            t0 = time.time()
            for depth in (8, 12, 16, 20, 24, 30, 40):
                res = dfs_por(m, 10 ** 8, depth, t0 + secs, start=s0,
                              prefix=["(prefix of the hand schedule up to the wipe)"])
                if res[0] != "depth-bounded":
                    break
            res = (res[0] + " (depth <= %d)" % depth,) + res[1:]
            print("  %-58s %-6s %s, %d states, %.0f s" % (title[:58], rule, res[0], res[1],
                                                          time.time() - t))
            if res[3]:
                print("\n".join("     " + l for l in res[3]))
            sys.stdout.flush()


def run_prefix_swarm(secs=20, rules=RULES):
    """Swarm random completions from the hand schedules' post-wipe states
    (any interleaving of what is in flight, asks, campaigns up to term 2 by
    anyone but the wiped node's... by A, C, D, E; no further wipe)."""
    print("=" * 78)
    print("SWARM FROM THE HAND SCHEDULES' POST-WIPE STATES (random completions: what is in")
    print("flight in any order or never, asks <= 2 per pair, campaigns by A, C, D, E up to term 2)")
    for title, R, fn, kw in SCRIPTS:
        wipes = kw.get("max_wipes", 1)
        for rule in rules:
            m = Model(R, rule, max_term=2, max_wipes=wipes, max_asks=2,
                      campaigners=(0, 2, 3, 4))
            s0, lines = prefix_state(m, fn, wipes)
            runs, bad, warned, trace = swarm(m, time.time() + secs, 5, steps=60, start=s0)
            print("  %-58s %-6s %6d runs, %5d harmful, %5d with a precursor" % (
                title[:58], rule, runs, bad, warned))
            sys.stdout.flush()


def run_searches(secs_dfs=90, secs_swarm=45):
    """The bounded searches the report quotes (about 12 minutes)."""
    print("=" * 78)
    print("SEARCH (bounded; a 'harmful' violation = two leaders in one term, each")
    print("leader's quorum holding a dir not wiped since)")
    for rule in ("main", "prop"):
        m = Model(3, rule, max_term=1, max_wipes=1, max_asks=1)
        t = time.time()
        res = dfs_por(m, 10 ** 8, 200, time.time() + secs_dfs)
        print("  R=3 %-6s first start, terms<=1 wipes<=1 asks<=1/pair: DFS+sleep sets %s, %d "
              "states, %d transitions, %.0f s" % (rule, res[0], res[1], res[2], time.time() - t))
        if res[3]:
            print("\n".join("     " + l for l in res[3]))
        sys.stdout.flush()
    for init, wipes, rules in (("first", 1, RULES), ("partial", 1, RULES),
                               ("settled", 1, RULES), ("settled", 2, ("prop", "prop1"))):
        for rule in rules:
            camp = (0, 1, 3)
            wip = (1,) if wipes == 1 else (1, 2)
            m = Model(5, rule, max_term=1, max_wipes=wipes, max_asks=2, init=init,
                      campaigners=camp, wipeable=wip)
            runs, bad, warned, trace = swarm(m, time.time() + secs_swarm, 11)
            print("  R=5 %-6s init=%-7s terms<=1 wipes<=%d (wipeable %s, campaigners %s): swarm "
                  "%d runs, %d harmful, %d with a precursor" % (
                      rule, init, wipes, wip, camp, runs, bad, warned))
            if trace:
                print("\n".join("     " + l for l in trace))
            sys.stdout.flush()


def main(argv):
    cmd = argv[1] if len(argv) > 1 else "all"
    if cmd == "scripts":
        run_scripts()
    elif cmd == "live":
        run_live()
    elif cmd == "searches":
        run_searches()
    elif cmd == "prefix-swarm":
        run_prefix_swarm(float(argv[2]) if len(argv) > 2 else 20, tuple(argv[3:]) or RULES)
    elif cmd == "prefixes":
        run_from_prefixes(float(argv[2]) if len(argv) > 2 else 60,
                          tuple(argv[3:]) or RULES)
    elif cmd == "search":
        R, rule = int(argv[2]), argv[3]
        wipes = int(argv[4]) if len(argv) > 4 else 1
        secs = float(argv[5]) if len(argv) > 5 else 60
        restarts = int(argv[6]) if len(argv) > 6 else 0
        run_search(R, rule, wipes, secs, restarts=restarts)
    elif cmd == "all":
        run_scripts()
        run_live()
    elif cmd == "check" and len(argv) == 3:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            run_scripts()
        got = out.getvalue().splitlines()
        with open(argv[2]) as f:
            want = f.read().splitlines()
        for n, (g, w) in enumerate(zip(got, want)):
            if g != w:
                print("line %d differs:\n  now:  %s\n  kept: %s" % (n + 1, g, w))
                return 1
        if len(got) != len(want):
            print("%d lines now, %d kept" % (len(got), len(want)))
            return 1
        print("the schedules' %d lines of output, every rule, as kept" % len(got))
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
