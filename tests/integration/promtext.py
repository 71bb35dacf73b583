"""A strict parser of the Prometheus text exposition format 0.0.4
(https://prometheus.io/docs/instrumenting/exposition_formats/), for the
tests: anything the format does not allow raises ParseError.

Checked: line grammar (names, labels, escapes, values, optional
timestamp), the text ends with a newline, HELP/TYPE at most once per
family and before its samples, a family's samples contiguous, no series
twice, counters non-negative, histograms well formed (le on every bucket,
buckets ascending and cumulative, a +Inf bucket equal to _count, _sum and
_count present), summaries' quantile labels.

    fams = parse(text)          # {family: Family}
    fams["x"].samples           # [(name, {label: value}, float)]
    value(fams, "x_total", type="a")
"""
import math
import re

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")
_name_re = re.compile(NAME)
_label_re = re.compile(LABEL)


class ParseError(ValueError):
    pass


class Family:
    def __init__(self, name):
        self.name, self.type, self.help = name, None, None
        self.samples = []


def _value(s, where):
    if s in ("+Inf", "Inf"):
        return math.inf
    if s == "-Inf":
        return -math.inf
    if s == "NaN":
        return math.nan
    if not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", s):
        raise ParseError("%s: bad value %r" % (where, s))
    return float(s)


def _labels(line, i, where):
    """Parses {a="b",...} from line[i] == '{'. Returns (dict, next i)."""
    labels = {}
    i += 1
    while True:
        if line[i:i + 1] == "}":
            return labels, i + 1
        m = _label_re.match(line, i)
        if not m:
            raise ParseError("%s: bad label name at %d" % (where, i))
        key = m.group(0)
        i = m.end()
        if line[i:i + 2] != '="':
            raise ParseError("%s: want =\" after %s" % (where, key))
        i += 2
        val = []
        while True:
            if i >= len(line):
                raise ParseError("%s: unterminated label value" % where)
            ch = line[i]
            if ch == "\\":
                esc = line[i + 1:i + 2]
                if esc not in ("\\", '"', "n"):
                    raise ParseError("%s: bad escape \\%s" % (where, esc))
                val.append("\n" if esc == "n" else esc)
                i += 2
                continue
            if ch == '"':
                i += 1
                break
            val.append(ch)
            i += 1
        if key in labels:
            raise ParseError("%s: label %s twice" % (where, key))
        labels[key] = "".join(val)
        if line[i:i + 1] == ",":
            i += 1
        elif line[i:i + 1] != "}":
            raise ParseError("%s: want , or } after a label" % where)


def _sample(line, where):
    m = _name_re.match(line)
    if not m:
        raise ParseError("%s: bad metric name" % where)
    name, i, labels = m.group(0), m.end(), {}
    if line[i:i + 1] == "{":
        labels, i = _labels(line, i, where)
    if line[i:i + 1] != " ":
        raise ParseError("%s: want one space before the value" % where)
    parts = line[i + 1:].split(" ")
    if len(parts) not in (1, 2) or "" in parts:
        raise ParseError("%s: want VALUE [TIMESTAMP]" % where)
    v = _value(parts[0], where)
    if len(parts) == 2 and not re.fullmatch(r"-?\d+", parts[1]):
        raise ParseError("%s: bad timestamp %r" % (where, parts[1]))
    return name, labels, v


def _family_of(name, fams):
    """The declared family a sample name belongs to."""
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[:-len(suffix)] if name.endswith(suffix) else None
        if base and base in fams and fams[base].type in ("histogram",
                                                         "summary"):
            return base
    return name


def parse(text):
    if not text.endswith("\n"):
        raise ParseError("text does not end with a newline")
    fams, order, seen = {}, [], set()
    closed = set()
    current = None
    for n, line in enumerate(text[:-1].split("\n"), 1):
        where = "line %d" % n
        if line == "":
            raise ParseError("%s: empty line" % where)
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not _name_re.fullmatch(name):
                    raise ParseError("%s: bad name %r" % (where, name))
                f = fams.setdefault(name, Family(name))
                if name not in order:
                    order.append(name)
                if f.samples or name in closed:
                    raise ParseError("%s: %s of %s after its samples"
                                     % (where, parts[1], name))
                rest = parts[3] if len(parts) == 4 else ""
                if parts[1] == "TYPE":
                    if f.type is not None:
                        raise ParseError("%s: second TYPE of %s" % (where,
                                                                    name))
                    if rest not in TYPES:
                        raise ParseError("%s: unknown type %r" % (where,
                                                                  rest))
                    f.type = rest
                else:
                    if f.help is not None:
                        raise ParseError("%s: second HELP of %s" % (where,
                                                                    name))
                    if re.search(r"\\[^\\n]", rest):
                        raise ParseError("%s: bad escape in HELP" % where)
                    f.help = rest
                if current and current != name:
                    closed.add(current)
                current = name
            continue
        name, labels, v = _sample(line, where)
        fam = _family_of(name, fams)
        if fam in closed:
            raise ParseError("%s: %s's samples are not together" % (where,
                                                                     fam))
        if current and current != fam:
            closed.add(current)
        current = fam
        f = fams.setdefault(fam, Family(fam))
        if fam not in order:
            order.append(fam)
        key = (name, tuple(sorted(labels.items())))
        if key in seen:
            raise ParseError("%s: series %s%r twice" % (where, name, labels))
        seen.add(key)
        if f.type == "counter" and not v >= 0:
            raise ParseError("%s: counter %s is %r" % (where, name, v))
        f.samples.append((name, labels, v))
    for f in fams.values():
        if f.type == "histogram":
            _check_histogram(f)
        elif f.type == "summary":
            for name, labels, _ in f.samples:
                if name == f.name and "quantile" not in labels:
                    raise ParseError("summary %s without quantile" % name)
    return fams


def _check_histogram(f):
    groups = {}
    for name, labels, v in f.samples:
        rest = tuple(sorted((k, x) for k, x in labels.items() if k != "le"))
        g = groups.setdefault(rest, {"buckets": [], "sum": None,
                                     "count": None})
        if name == f.name + "_bucket":
            if "le" not in labels:
                raise ParseError("%s bucket without le" % f.name)
            g["buckets"].append((_value(labels["le"], f.name), v))
        elif name == f.name + "_sum":
            g["sum"] = v
        elif name == f.name + "_count":
            g["count"] = v
        else:
            raise ParseError("histogram %s has sample %s" % (f.name, name))
    for rest, g in groups.items():
        b = g["buckets"]
        if g["sum"] is None or g["count"] is None or not b:
            raise ParseError("histogram %s%r lacks _sum, _count or buckets"
                             % (f.name, rest))
        les = [x[0] for x in b]
        if les != sorted(les) or len(set(les)) != len(les):
            raise ParseError("histogram %s: le not ascending" % f.name)
        if les[-1] != math.inf:
            raise ParseError("histogram %s: no +Inf bucket" % f.name)
        counts = [x[1] for x in b]
        if counts != sorted(counts):
            raise ParseError("histogram %s%r: buckets not cumulative"
                             % (f.name, rest))
        if counts[-1] != g["count"]:
            raise ParseError("histogram %s%r: +Inf bucket %r != count %r"
                             % (f.name, rest, counts[-1], g["count"]))


def value(fams, name, **labels):
    """The value of the sample `name` whose labels include `labels`
    (exactly one must match), or None if none does."""
    base = _family_of(name, fams)
    hits = [v for n, ls, v in (fams[base].samples if base in fams else [])
            if n == name and all(ls.get(k) == x for k, x in labels.items())]
    if len(hits) > 1:
        raise ParseError("%s%r matches %d series" % (name, labels, len(hits)))
    return hits[0] if hits else None


# Texts the parser must refuse: the test runs them, so a parser that
# accepts anything fails.
BAD = [
    "x 1",                                      # no final newline
    "x{a=\"b\" 1\n",                            # unterminated labels
    "x{a=\"\\t\"} 1\n",                         # bad escape
    "x one\n",                                  # bad value
    "# TYPE x counter\nx -1\n",                 # negative counter
    "# TYPE x gauge\n# TYPE x gauge\nx 1\n",    # TYPE twice
    "x 1\n# TYPE x gauge\n",                    # TYPE after samples
    "# TYPE x gauge\nx 1\n# TYPE y gauge\ny 1\nx 2\n",  # not together
    "x{a=\"1\"} 1\nx{a=\"1\"} 2\n",             # series twice
    "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\n"
    "h_sum 1\nh_count 1\n",                     # not cumulative
    "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",
    "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 1\n",
    "x 1\n\n",                                  # empty line
]
