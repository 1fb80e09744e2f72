package web

import (
	"strconv"
	"strings"
)

// normaliseRange rewrites a Range header for a file of size bytes before
// http.ServeContent sees it, for the two cases it gets wrong:
//
//   - a suffix of zero bytes ("bytes=-0") selects nothing and is
//     unsatisfiable (RFC 9110 §14.1.1); ServeContent answers it 206 with
//     an impossible Content-Range. It becomes a range past the end, which
//     ServeContent answers 416 (in the contract's shape, contractErrorWriter).
//   - several ranges, overlapping or not, would be served as a multipart
//     body whose part headers can make it far larger than the file. They
//     are coalesced into the one range that spans them all (RFC 9110
//     §14.2 lets a server do so), so no answer is ever larger than the file.
//
// Anything else (no header, another unit, a syntax ServeContent refuses)
// passes unchanged.
func normaliseRange(h string, size int64) string {
	specs, ok := strings.CutPrefix(h, "bytes=")
	if !ok || size <= 0 {
		return h
	}
	past := "bytes=" + strconv.FormatInt(size, 10) + "-"
	first, last := int64(-1), int64(-1)
	for spec := range strings.SplitSeq(specs, ",") {
		spec = strings.TrimSpace(spec)
		if spec == "" {
			continue
		}
		a, b, ok := strings.Cut(spec, "-")
		if !ok {
			return h
		}
		var start, end int64
		switch {
		case a == "": // suffix: the last b bytes
			k, err := strconv.ParseInt(b, 10, 64)
			if err != nil || k < 0 {
				return h
			}
			if k == 0 {
				continue // selects nothing
			}
			start, end = max(size-k, 0), size-1
		default:
			s, err := strconv.ParseInt(a, 10, 64)
			if err != nil || s < 0 {
				return h
			}
			e := size - 1
			if b != "" {
				if e, err = strconv.ParseInt(b, 10, 64); err != nil || e < s {
					return h
				}
			}
			if s >= size {
				continue // past the end: unsatisfiable on its own
			}
			start, end = s, min(e, size-1)
		}
		if first < 0 || start < first {
			first = start
		}
		last = max(last, end)
	}
	if first < 0 {
		return past
	}
	return "bytes=" + strconv.FormatInt(first, 10) + "-" + strconv.FormatInt(last, 10)
}
