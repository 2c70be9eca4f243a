package api

import (
	"context"
	"errors"
	"fmt"

	"orderseal/internal/signedhttp/httpsig"
)

// Batch routes: many entries in one signed request (an owner's).
const (
	PathTokensBatch = "/v1/tokens/batch"  // POST: register many
	PathRevealBatch = "/v1/tokens/reveal" // POST: reveal many of one's own
)

// Batch limits: at most MaxBatchItems entries and MaxBatchBody bytes.
const (
	MaxBatchItems = 1000
	MaxBatchBody  = 1 << 20
)

// BatchRegisterRequest is many RegisterRequests of one owner, each sealed
// on its own (SealRegister: type, label and shareable in its AAD). Deposits
// are not batched.
type BatchRegisterRequest struct {
	Items []RegisterRequest `json:"items" validate:"required,min=1,max=1000,dive"`
}

// BatchResult is the answer for one item, in the request's order: its
// token, or the stable code (and a detail free of the value) of its
// refusal: sealed-value, postcode-invalid, region-required, phone-invalid,
// invalid-value, deposit-order, ….
type BatchResult struct {
	Token   string `json:"token,omitempty"`
	Created bool   `json:"created,omitempty"`
	Code    string `json:"code,omitempty"`
	Detail  string `json:"detail,omitempty"`
}

// BatchRegisterResponse answers every item; the batch was one durable
// commit.
type BatchRegisterResponse struct {
	Results []BatchResult `json:"results"`
}

// BatchRevealRequest names tokens of the caller's own.
type BatchRevealRequest struct {
	Tokens []string `json:"tokens" validate:"required,min=1,max=1000,dive,max=128"`
}

// BatchReveal is one token's answer: its value sealed for the caller
// (SealReveal, as RevealOwn's), or the code of the refusal
// (unknown-token, token-expired).
type BatchReveal struct {
	Token string  `json:"token"`
	Type  string  `json:"type,omitempty"`
	Value *Sealed `json:"value,omitempty"`
	Code  string  `json:"code,omitempty"`
}

// BatchRevealResponse answers every token in the request's order.
type BatchRevealResponse struct {
	Results []BatchReveal `json:"results"`
}

// BatchEntry is one value for RegisterBatch.
type BatchEntry struct {
	Type      string
	Label     string
	Shareable bool
	Value     []byte
}

// ErrBatchAnswer is returned when the vault's answer does not match the request.
var ErrBatchAnswer = errors.New("vault batch answer does not match the request")

// RegisterBatch seals each entry for the vault and registers all of them
// in one signed request: one result per entry, in order.
func (c *Client) RegisterBatch(ctx context.Context, entries []BatchEntry) ([]BatchResult, error) {
	req := &BatchRegisterRequest{Items: make([]RegisterRequest, len(entries))}
	for i, e := range entries {
		req.Items[i] = RegisterRequest{Type: e.Type, Label: e.Label, Shareable: e.Shareable}
		if err := SealRegister(c.keys, c.peer.Identity, &req.Items[i], e.Value); err != nil {
			return nil, err
		}
	}
	out, err := httpsig.Call[BatchRegisterResponse](ctx, c.peer, httpsig.MethodPost, PathTokensBatch, req)
	if err != nil {
		return nil, err
	}
	if len(out.Results) != len(entries) {
		return nil, fmt.Errorf("%w: %d results for %d entries", ErrBatchAnswer, len(out.Results), len(entries))
	}
	return out.Results, nil
}

// Revealed is one token's value, or the code of the vault's refusal.
type Revealed struct {
	Token string
	Value []byte
	Code  string
}

// RevealBatch reveals many of the caller's own tokens in one signed
// request.
func (c *Client) RevealBatch(ctx context.Context, tokens []string) ([]Revealed, error) {
	out, err := httpsig.Call[BatchRevealResponse](ctx, c.peer, httpsig.MethodPost, PathRevealBatch, BatchRevealRequest{Tokens: tokens})
	if err != nil {
		return nil, err
	}
	if len(out.Results) != len(tokens) {
		return nil, fmt.Errorf("%w: %d results for %d tokens", ErrBatchAnswer, len(out.Results), len(tokens))
	}
	res := make([]Revealed, len(tokens))
	for i, r := range out.Results {
		if r.Token != tokens[i] {
			return nil, fmt.Errorf("%w: result %d names another token", ErrBatchAnswer, i)
		}
		res[i] = Revealed{Token: r.Token, Code: r.Code}
		if r.Code != "" {
			continue
		}
		if r.Value == nil {
			return nil, fmt.Errorf("%w: result %d has neither value nor code", ErrBatchAnswer, i)
		}
		v, err := OpenReveal(c.keys, c.peer.Identity, r.Token, "", *r.Value)
		if err != nil {
			return nil, err
		}
		res[i].Value = v
	}
	return res, nil
}
