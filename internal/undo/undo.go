// Package undo is the project's one way to take back a change made in
// several steps: each step that made something records how to remove it,
// and a change that fails half way runs the records, newest first, so that
// it leaves nothing behind. Both front ends' network and container set-up
// (package linuxhost, the CNI plugin's ADD) use it.
package undo

import "context"

// Steps records how to take back what a change has made so far. The zero
// value is ready to use; it is not safe for concurrent use.
type Steps struct {
	steps []func(context.Context)
}

// Add records f, which takes back the step just made.
func (u *Steps) Add(f func(context.Context)) { u.steps = append(u.steps, f) }

// Run takes back every step recorded, newest first, and forgets them. It
// runs even when ctx is done: with ctx's values but not its cancellation,
// so that a change cancelled half way is still taken back.
func (u *Steps) Run(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	for i := len(u.steps) - 1; i >= 0; i-- {
		u.steps[i](ctx)
	}
	u.steps = nil
}

// OnError runs the steps when *err is not nil: deferred right after the
// Steps are declared, it takes back a change that returns an error.
//
//	func make(ctx context.Context) (err error) {
//		var u undo.Steps
//		defer u.OnError(ctx, &err)
//		...
//	}
func (u *Steps) OnError(ctx context.Context, err *error) {
	if *err != nil {
		u.Run(ctx)
	}
}
