import { describe, expect, it } from "vitest";
import { isExpired, tokenExpiry } from "./token";

// base64url of {"sub":"ana","exp":1700000000} and of {"sub":"ana"}; the header and signature are not read.
const WITH_EXP = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbmEiLCJleHAiOjE3MDAwMDAwMDB9.sig";
const WITHOUT_EXP = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbmEifQ.sig";

describe("tokenExpiry", () => {
  it("reads the exp claim of an unpadded base64url payload", () => {
    expect(tokenExpiry(WITH_EXP)).toBe(1700000000);
  });
  it("is null without an exp claim or for what is not a JWT", () => {
    expect(tokenExpiry(WITHOUT_EXP)).toBeNull();
    expect(tokenExpiry("not-a-token")).toBeNull();
    expect(tokenExpiry("a.%%%.c")).toBeNull();
  });
});

describe("isExpired", () => {
  it("is true from the exp second on, never without exp", () => {
    expect(isExpired(1700000000, 1699999999999)).toBe(false);
    expect(isExpired(1700000000, 1700000000000)).toBe(true);
    expect(isExpired(null, Number.MAX_SAFE_INTEGER)).toBe(false);
  });
});
