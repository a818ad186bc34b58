package main

import (
	"fmt"
	"slices"
	"testing"
)

func scheduled(seed uint64) []round {
	return schedule(newShuffler(seed), []int{1, 4, 16, 64}, 5, cellRefreshHTTP, cellLimit, cellService)
}

// The seed the bench prints gives the same order again, and another seed another order.
func TestScheduleIsDeterminedBySeed(t *testing.T) {
	a, b := fmt.Sprint(scheduled(42)), fmt.Sprint(scheduled(42))
	if a != b {
		t.Fatalf("seed 42 gave two orders:\n%s\n%s", a, b)
	}
	if c := fmt.Sprint(scheduled(43)); c == a {
		t.Errorf("seeds 42 and 43 gave the same order: %s", a)
	}
}

// Shuffled, the schedule still holds every round of every concurrency once, each with the three
// cells, and it is not in the order it was listed.
func TestScheduleShufflesRoundsAndCells(t *testing.T) {
	rounds := scheduled(7)
	cells := slices.Sorted(slices.Values([]string{cellRefreshHTTP, cellLimit, cellService}))
	seen := map[string]int{}
	firstCell := map[string]bool{}
	for _, r := range rounds {
		seen[fmt.Sprintf("%d/%d", r.workers, r.repeat)]++
		firstCell[r.cells[0]] = true
		if got := slices.Sorted(slices.Values(r.cells)); !slices.Equal(got, cells) {
			t.Errorf("round %+v: cells %v", r, r.cells)
		}
	}
	if len(rounds) != 20 || len(seen) != 20 {
		t.Errorf("%d rounds, %d distinct: want 20 of each", len(rounds), len(seen))
	}
	if len(firstCell) < 2 {
		t.Errorf("every round starts with the same cell: %v", firstCell)
	}
	inOrder := slices.IsSortedFunc(rounds, func(a, b round) int { return a.workers - b.workers })
	if inOrder {
		t.Errorf("the rounds ran by concurrency, as listed: %v", rounds)
	}
}
