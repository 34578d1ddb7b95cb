package undo_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/undo"
)

func TestRunNewestFirstEvenWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var u undo.Steps
	var ran []int
	for i := range 3 {
		u.Add(func(ctx context.Context) {
			if ctx.Err() != nil {
				t.Errorf("step %d ran with a done context", i)
			}
			ran = append(ran, i)
		})
	}
	u.Run(ctx)
	if !slices.Equal(ran, []int{2, 1, 0}) {
		t.Errorf("ran %v", ran)
	}
	u.Run(ctx)
	if len(ran) != 3 {
		t.Errorf("a second Run ran the steps again: %v", ran)
	}
}

func TestOnError(t *testing.T) {
	for _, fail := range []bool{false, true} {
		undone := false
		func() (err error) {
			var u undo.Steps
			defer u.OnError(context.Background(), &err)
			u.Add(func(context.Context) { undone = true })
			if fail {
				return errors.New("failed")
			}
			return nil
		}()
		if undone != fail {
			t.Errorf("failed %v: undone %v", fail, undone)
		}
	}
}
