package imaging_test

import (
	"fmt"
	"path/filepath"

	"github.com/rfc-project/rfc/imaging"
)

// A canny ControlNet condition for a 768×512 (width×height) generation from a 600×400 photo:
// resize as Refiners does, detect edges as the ControlNet annotator does, make the
// three-channel [0, 1] tensor the ControlNet's condition encoder takes.
func Example() {
	photo, err := imaging.Load(filepath.Join("..", "testdata", "images", "coffee.png"))
	if err != nil {
		panic(err)
	}
	photo, err = imaging.Resize(photo, 768, 512)
	if err != nil {
		panic(err)
	}
	edges, err := imaging.Canny(photo, 100, 200)
	if err != nil {
		panic(err)
	}
	rgb, err := imaging.ControlImage(edges)
	if err != nil {
		panic(err)
	}
	cond, err := imaging.ToTensor(rgb, imaging.Unit)
	if err != nil {
		panic(err)
	}
	values := map[float32]bool{}
	for _, v := range cond.F32 {
		values[v] = true
	}
	fmt.Printf("edge map %d×%d, %d channel\n", edges.Width, edges.Height, edges.Channels)
	fmt.Println("condition", cond.ShapeString(), "values 0 and 1:", len(values) == 2 && values[0] && values[1])
	// Output:
	// edge map 768×512, 1 channel
	// condition [1, 3, 512, 768] values 0 and 1: true
}
