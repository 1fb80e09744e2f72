package files

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/parley-chat/parley/store"
)

// OrphanStore is what the orphan sweep needs of the store.
type OrphanStore interface {
	UnattachedBefore(ctx context.Context, t time.Time, limit int) ([]store.File, error)
	// DeleteOrphanFile deletes only a file still unattached: a send that
	// claimed it after the listing keeps it.
	DeleteOrphanFile(ctx context.Context, id string, t time.Time) error
}

// chunkSweeper is a store that can be left with chunks of uploads whose
// process died before the file was complete (MongoDB's GridFS; SQLite
// drops unfinished uploads when it opens).
type chunkSweeper interface {
	SweepOrphanChunks(ctx context.Context, t time.Time) (int64, error)
}

// sweepBatch is how many orphans one query fetches, so a large backlog is
// never listed at once.
const sweepBatch = 100

// SweepOrphans removes the attachment files never attached to a message and
// created before cutoff, and reports how many it removed. Avatars are never
// swept (the store lists attachment-kind files only). It stops at the first
// failure: what is left waits for the next sweep. A file already gone (swept
// by another node) is no failure.
func SweepOrphans(ctx context.Context, files OrphanStore, cutoff time.Time) (int, error) {
	removed := 0
	for {
		batch, err := files.UnattachedBefore(ctx, cutoff, sweepBatch)
		if err != nil {
			return removed, fmt.Errorf("list orphan files: %w", err)
		}
		before := removed
		for _, f := range batch {
			err := files.DeleteOrphanFile(ctx, f.ID, cutoff)
			switch {
			case err == nil:
				removed++
			case errors.Is(err, store.ErrNotFound):
			default:
				return removed, fmt.Errorf("remove orphan file %s: %w", f.ID, err)
			}
		}
		// A full batch may hide more. One in which this sweep removed
		// nothing ends it too: were those files listed but not found, the
		// same batch would come back forever; were they removed by another
		// node, that node is sweeping already.
		if len(batch) < sweepBatch || removed == before {
			return removed, nil
		}
	}
}

// RunSweeper sweeps files left unattached for longer than ttl, at once and
// then every interval, until ctx ends.
func RunSweeper(ctx context.Context, files OrphanStore, interval, ttl time.Duration, log *slog.Logger) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		cutoff := time.Now().Add(-ttl)
		if cs, ok := files.(chunkSweeper); ok {
			if n, err := cs.SweepOrphanChunks(ctx, cutoff); err != nil && ctx.Err() == nil {
				log.Warn("orphan chunk sweep failed; the next one retries", "err", err)
			} else if n > 0 {
				log.Info("removed chunks of uploads that never completed", "chunks", n)
			}
		}
		n, err := SweepOrphans(ctx, files, cutoff)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("orphan file sweep failed; the next one retries", "removed", n, "err", err)
		case n > 0:
			log.Info("removed files uploaded but never attached", "count", n, "ttl", ttl)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
