#!/usr/bin/env python3
"""The chaos checker (history.py) on fabricated histories: a valid one
passes, and each kind of violation the chaos suite looks for is caught
(a lost acknowledged create, a VLAN held twice, a released cluster back,
two answers for one request id, a phantom cluster, an unresolved
outcome, a linearizable read missing an acknowledged create)."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import history as h  # noqa: E402

POOLS = {"a": set(range(100, 110)), "b": set(range(100, 110)),
         "c": set(range(100, 105))}


def op(rid, kind, name, args, inv, resp, outcome, vlan=0, code=0,
       resolved=False):
    o = h.Op(rid, kind, name, args, inv)
    if outcome in h.DEFINITE:
        res = [code if outcome == "fail" else 0, vlan, 1, "x"]
        o.add_attempt("a", inv, resp, outcome, res[0], res)
    else:
        o.add_attempt("a", inv, resp, outcome, -10015, None)
    o.resolved = resolved
    return o


def base():
    """Two clusters at a, the first released before the second took its
    VLAN; one create refused; one extended."""
    return [
        op("r1", h.CREATE, "ch-1", ["a", "b"], 0.0, 0.1, "ok", 100),
        op("r2", h.RELEASE, "ch-1", None, 0.2, 0.3, "ok", 100),
        op("r3", h.CREATE, "ch-2", ["a"], 0.4, 0.5, "ok", 100),
        op("r4", h.CREATE, "ch-3", ["c"], 0.6, 0.7, "fail", code=-10003),
        op("r5", h.EXTEND, "ch-2", "c", 0.8, 0.9, "ok", 100),
    ]


def final_of(ops):
    return h.Model(ops).expected()


class TestChecker(unittest.TestCase):
    def check(self, ops, reads=(), final=None):
        if final is None:
            final = final_of(ops)
        return h.check_all(ops, list(reads), final, POOLS, "ch-")

    def test_valid_history_passes(self):
        ops = base()
        reads = [h.Read("a", True, 1.0, 1.1,
                        {"ch-2": (100, frozenset(["a", "c"]))})]
        self.assertEqual(self.check(ops, reads,
                                    {"ch-2": (100, frozenset(["a", "c"]))}),
                         [])

    def test_lost_acknowledged_create(self):
        bad = self.check(base(), final={})
        self.assertTrue(any("ch-2" in b and "missing" in b for b in bad), bad)

    def test_vlan_held_twice_over_time(self):
        # ch-1 never released: ch-2 got its VLAN at a shared site.
        ops = [o for o in base() if o.rid != "r2"]
        bad = self.check(ops)
        self.assertTrue(any(b.startswith("I1:") and "VLAN 100 at a" in b
                            for b in bad), bad)

    def test_concurrent_release_is_not_a_violation(self):
        # The release was sent before the second create was answered: it
        # may have linearized first.
        ops = base()
        ops[1] = op("r2", h.RELEASE, "ch-1", None, 0.45, 0.6, "ok", 100)
        self.assertEqual(self.check(ops), [])

    def test_indeterminate_release_may_end_a_hold(self):
        ops = base()
        ops[1] = op("r2", h.RELEASE, "ch-1", None, 0.2, 0.3, "indet")
        ops[1].add_attempt("b", 5.0, 5.1, "ok", 0, [0, 100, 0, "x"])
        ops[1].resolved = True
        self.assertEqual(self.check(ops), [])

    def test_vlan_twice_in_final_state(self):
        ops = base()
        final = final_of(ops)
        final["ch-9"] = (100, frozenset(["a"]))
        bad = self.check(ops, final=final)
        self.assertTrue(any("held by ch-2 and ch-9" in b or
                            "held by ch-9 and ch-2" in b for b in bad), bad)
        self.assertTrue(any("nobody created" in b for b in bad), bad)

    def test_released_cluster_back(self):
        ops = base()
        final = final_of(ops)
        final["ch-1"] = (101, frozenset(["a", "b"]))
        bad = self.check(ops, final=final)
        self.assertTrue(any("released ch-1" in b and "back" in b
                            for b in bad), bad)

    def test_released_cluster_in_linear_read(self):
        reads = [h.Read("b", True, 0.35, 0.38,
                        {"ch-1": (100, frozenset(["a", "b"]))})]
        bad = self.check(base(), reads)
        self.assertTrue(any("whose release was acknowledged" in b
                            for b in bad), bad)

    def test_stale_read_may_lag(self):
        reads = [h.Read("b", False, 0.35, 0.38,
                        {"ch-1": (100, frozenset(["a", "b"]))})]
        self.assertEqual(self.check(base(), reads), [])

    def test_linear_read_misses_acknowledged_create(self):
        reads = [h.Read("b", True, 0.6, 0.65, {})]
        bad = self.check(base(), reads)
        self.assertTrue(any(b.startswith("I3:") and "misses ch-2" in b
                            for b in bad), bad)

    def test_read_shows_refused_create(self):
        reads = [h.Read("c", False, 1.0, 1.1,
                        {"ch-3": (105, frozenset(["c"]))})]
        bad = self.check(base(), reads)
        self.assertTrue(any("ch-3" in b and "fail" in b for b in bad), bad)

    def test_wrong_vlan(self):
        ops = base()
        final = final_of(ops)
        final["ch-2"] = (101, final["ch-2"][1])
        bad = self.check(ops, final=final)
        self.assertTrue(any("ch-2 as VLAN 101" in b for b in bad), bad)

    def test_lost_extension(self):
        ops = base()
        final = final_of(ops)
        final["ch-2"] = (100, frozenset(["a"]))
        bad = self.check(ops, final=final)
        self.assertTrue(any("ch-2" in b and "'c'" in b for b in bad), bad)

    def test_unsent_create_applied(self):
        ops = base() + [op("r6", h.CREATE, "ch-4", ["b"], 1.0, 1.2,
                           "unsent")]
        final = final_of(ops)
        final["ch-4"] = (101, frozenset(["b"]))
        bad = self.check(ops, final=final)
        self.assertTrue(any("ch-4" in b and "unsent" in b for b in bad), bad)

    def test_two_answers_for_one_request_id(self):
        ops = base()
        ops[2].add_attempt("c", 9.0, 9.1, "ok", 0, [0, 101, 1, "x"])
        bad = self.check(ops)
        self.assertTrue(any(b.startswith("I2:") and "r3" in b for b in bad),
                        bad)

    def test_unresolved_outcome_fails(self):
        ops = base() + [op("r7", h.CREATE, "ch-5", ["a"], 2.0, 2.5, "indet")]
        bad = self.check(ops)
        self.assertTrue(any("never learnt" in b for b in bad), bad)

    def test_vlan_outside_pool(self):
        pools = dict(POOLS, c=set(range(105, 110)))
        bad = h.check_all(base(), [], final_of(base()), pools, "ch-")
        self.assertTrue(any("outside c's pool" in b for b in bad), bad)

    def test_outcome_folding(self):
        o = h.Op("x", h.CREATE, "ch-7", ["a"], 0.0)
        o.add_attempt("a", 0.0, 0.1, "unsent", -10014, None)
        self.assertEqual(o.outcome, "unsent")
        o.add_attempt("b", 0.2, 0.3, "indet", -10015, None)
        self.assertEqual(o.outcome, "indet")
        o.add_attempt("c", 0.4, 0.5, "ok", 0, [0, 100, 1, "x"])
        self.assertEqual((o.outcome, o.vlan, o.resp), ("ok", 100, 0.5))
        o.add_attempt("a", 0.6, 0.7, "indet", -10015, None)
        self.assertEqual(o.outcome, "ok")


if __name__ == "__main__":
    unittest.main(verbosity=2)
