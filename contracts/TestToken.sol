// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title TestToken: an ERC-20-like token for EthHook's end-to-end tests.
/// @notice Anyone can mint; `emitTransfers` and `batchTransfer` emit many Transfer events in one
///         transaction so tests can produce thousands of logs with few transactions.
contract TestToken {
    string public name;
    string public symbol;
    uint8 public constant decimals = 18;
    uint256 public totalSupply;
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    constructor(string memory name_, string memory symbol_) {
        name = name_;
        symbol = symbol_;
    }

    function mint(address to, uint256 amount) external {
        totalSupply += amount;
        balanceOf[to] += amount;
        emit Transfer(address(0), to, amount);
    }

    function transfer(address to, uint256 amount) external returns (bool) {
        _move(msg.sender, to, amount);
        return true;
    }

    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
        return true;
    }

    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        require(allowed >= amount, "allowance");
        if (allowed != type(uint256).max) {
            allowance[from][msg.sender] = allowed - amount;
        }
        _move(from, to, amount);
        return true;
    }

    /// @notice Moves `amounts[i]` to `to[i]` from the caller: one Transfer event per recipient.
    function batchTransfer(address[] calldata to, uint256[] calldata amounts) external {
        require(to.length == amounts.length, "length");
        for (uint256 i = 0; i < to.length; i++) {
            _move(msg.sender, to[i], amounts[i]);
        }
    }

    /// @notice Mints `n` tokens, one Transfer event each, from the zero address to
    ///         address(uint160(base + i)) with value `base + i`: distinct, predictable logs.
    function emitTransfers(uint256 n, uint256 base) external {
        for (uint256 i = 0; i < n; i++) {
            address to = address(uint160(base + i));
            totalSupply += base + i;
            balanceOf[to] += base + i;
            emit Transfer(address(0), to, base + i);
        }
    }

    function _move(address from, address to, uint256 amount) internal {
        require(balanceOf[from] >= amount, "balance");
        balanceOf[from] -= amount;
        balanceOf[to] += amount;
        emit Transfer(from, to, amount);
    }
}
