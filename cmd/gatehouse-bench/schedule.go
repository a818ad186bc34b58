package main

import "math/rand/v2"

// round is one step of a schedule: cells measured back to back at one concurrency, each after a
// warm-up of its own. The cells of one round are the ones a comparison sets side by side.
type round struct {
	workers int
	repeat  int      // which repeat of its concurrency, from 0
	cells   []string // in the order they run
}

// newShuffler is the run's one source of order: everything the bench shuffles is drawn from it, so
// that the seed it prints gives the same order again.
func newShuffler(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, 0x6761746568)) // the second word only fixes the stream
}

// schedule lists repeats rounds of cells at each concurrency in an order drawn from rng: the
// cells of each round in their own order, then the rounds shuffled, so that neither the position
// in a round nor the drift of a shared machine (or of a table that grows with every rotation)
// falls on one cell or one concurrency more than on another.
func schedule(rng *rand.Rand, workers []int, repeats int, cells ...string) []round {
	var rounds []round
	for _, w := range workers {
		for i := range repeats {
			order := append([]string(nil), cells...)
			rng.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
			rounds = append(rounds, round{workers: w, repeat: i, cells: order})
		}
	}
	rng.Shuffle(len(rounds), func(a, b int) { rounds[a], rounds[b] = rounds[b], rounds[a] })
	return rounds
}
