package vitcross

// The ViT with cross-attention of models/vit.rfn at the sizes of
// testdata/golden/vitcross_*.safetensors (scripts/golden/vit.py): a second input, my_embed,
// feeds the attention's keys and values.
//go:generate go run github.com/rfc-project/rfc/cmd/rfc compile ../../models/vit.rfn --model ViTCross --set embedding_dim=64 --set patch_size=8 --set image_size=32 --set num_layers=2 --set num_heads=4 --set context_dim=48 --set context_len=5 --set batch=2 -o . --pkg vitcross
