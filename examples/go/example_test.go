package tank_test

import (
	"errors"
	"fmt"

	"tank.example/tank"
)

func ExampleError() {
	_, err := tank.FetchManifest("registry.example:5000", "org/app", "no-such-tag", nil)
	var terr *tank.Error
	switch {
	case errors.Is(err, tank.ErrNotFound):
		fmt.Println("no such tag")
	case errors.Is(err, tank.ErrDigestMismatch):
		fmt.Println("corrupt content")
	case errors.As(err, &terr):
		fmt.Println(terr.Status, terr.Reason, terr.HTTPStatus, terr.Message)
	}
}
