package tokenizer_test

import (
	"fmt"
	"log"

	"github.com/rfc-project/rfc/tokenizer"
)

func Example() {
	tok, err := tokenizer.Default()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok.Encode("A photo of a cat"))
	ids := tok.Tokenize("A photo of a cat") // what SD1.5's text encoder reads
	fmt.Println(len(ids), ids[:8])
	text, err := tok.Decode(tok.Encode("Café &amp; CRÈME"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%q\n", text)
	// Output:
	// [320 1125 539 320 2368]
	// 77 [49406 320 1125 539 320 2368 49407 49407]
	// "café & crème "
}
