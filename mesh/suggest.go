package mesh

import "strings"

// closest returns the candidate most similar to word, for "did you mean"
// hints, or "" when none is close enough to be a likely typo. Case is
// ignored; a candidate is close when it is at most 2 edits away, or one
// edit per 6 characters for long words such as host names.
func closest(word string, candidates []string) string {
	best, bestDist := "", -1
	limit := max(2, len(word)/6)
	for _, c := range candidates {
		d := EditDistance(strings.ToLower(word), strings.ToLower(c))
		if d <= limit && (bestDist < 0 || d < bestDist) {
			best, bestDist = c, d
		}
	}
	return best
}

// didYouMean renders a hint for a misspelled word: `; did you mean "route"?`,
// or "" when no candidate is close.
func didYouMean(word string, candidates []string) string {
	if c := closest(word, candidates); c != "" {
		return `; did you mean "` + c + `"?`
	}
	return ""
}

// EditDistance is the Levenshtein distance between a and b: the number of
// single-byte insertions, deletions and substitutions that turn a into b.
// Commands use it for "did you mean" hints too.
func EditDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
